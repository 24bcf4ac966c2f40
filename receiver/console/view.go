package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// Bounds of what a page shows of sender data and errors.
const (
	// maxShownError is the most of an attempt's error a page shows.
	maxShownError = 1024
	// maxShownBody is the most of an event's body the detail shows.
	maxShownBody = 256 << 10
	// maxShownResponse is the most of a test notification's answer shown.
	maxShownResponse = 4 << 10
)

// pageNames are the templates of assets/, each rendered inside
// layout.html.
var pageNames = []string{"login", "overview", "events", "event", "refused", "dead", "keys", "test", "problem"}

type pages struct{ t map[string]*template.Template }

func parsePages() (*pages, error) {
	p := &pages{t: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "assets/layout.html", "assets/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		p.t[name] = t
	}
	return p, nil
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return human(now.Sub(t)) + " ago"
	},
	"dur":   human,
	"gap":   SignedGap,
	"https": httpsURL,
	"eventURL": func(webhook, id string) string {
		return "/event?" + url.Values{"webhook": {webhook}, "id": {id}}.Encode()
	},
}

// human shows a duration rounded to what a reader needs.
func human(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < 48*time.Hour:
		return d.Round(time.Second).String()
	}
	return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// SignedGap says how long before its receipt an event was signed, as the
// event page shows it: "2s before receipt", "3s after receipt" (the
// sender's clock is ahead of ours), or "at receipt". The signed time has
// whole seconds, so the gap is rounded to them. The command line's events
// show uses it too.
func SignedGap(signed, received time.Time) string {
	d := received.Sub(signed).Round(time.Second)
	switch {
	case d > 0:
		return human(d) + " before receipt"
	case d < 0:
		return human(-d) + " after receipt"
	}
	return "at receipt"
}

// httpsURL is s when it is an https URL with a host, and "" otherwise: a
// URL from an event is a link only then (never javascript:, data: or
// plain http).
func httpsURL(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return ""
	}
	return u.String()
}

// Patterns of secrets that may end up in an error text or an answer: a
// webhook secret, a signature header's value, credentials of an
// Authorization header, a URL or a key=value pair.
var (
	secretText   = regexp.MustCompile(`whsec_[A-Za-z0-9+/=_-]*`)
	signatureVal = regexp.MustCompile(`\b(v1[,=]|v1a[,=]|sha256=)[A-Za-z0-9+/=_-]{8,}`)
	authCreds    = regexp.MustCompile(`(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{6,}`)
	urlUserinfo  = regexp.MustCompile(`(://)[^/\s:@]+:[^\s@]*@`)
	keyValue     = regexp.MustCompile(`(?i)\b(api[_-]?token|api[_-]?key|password|passwd|secret|signature)(["']?\s*[:=]\s*["']?)[^\s"',;&}]+`)
)

// Redact removes from s anything that looks like a secret, a MAC or a
// signature (a whsec_ secret, a v1, signature value, the credentials of an
// Authorization header or of a URL, the value of a secret=, password=,
// signature=… pair), as the console does before it shows an error, a hint
// or an answer. The command line's event and status commands use it too.
func Redact(s string) string {
	s = secretText.ReplaceAllString(s, "whsec_[redacted]")
	s = signatureVal.ReplaceAllString(s, "${1}[redacted]")
	s = authCreds.ReplaceAllString(s, "${1}${2}[redacted]")
	s = urlUserinfo.ReplaceAllString(s, "${1}[redacted]@")
	return keyValue.ReplaceAllString(s, "${1}${2}[redacted]")
}

// redact is Redact, then clipped to n bytes. Sinks already keep their
// credentials out of their errors; this is the last line.
func redact(s string, n int) string { return clip(Redact(s), n) }

// clip cuts s to at most n bytes on a UTF-8 boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// prettyJSON indents a body for reading; a body that is not JSON is shown
// as it is. Secrets in it are redacted, as in any text the console shows.
func prettyJSON(body []byte) (string, bool) {
	clipped := len(body) > maxShownBody
	var b bytes.Buffer
	if json.Indent(&b, body, "", "  ") != nil {
		b.Reset()
		b.Write(body)
	}
	return redact(b.String(), maxShownBody), clipped
}

// view is what the layout gets: the page's title, its place in the
// navigation, the CSRF token for its forms, and the page's own data.
type view struct {
	Title   string
	Page    string
	CSRF    string
	Refresh bool
	Notice  string
	Now     time.Time
	Data    any
}

// refreshing are the pages that reload their content every few seconds.
var refreshing = map[string]bool{"overview": true, "events": true, "event": true, "refused": true, "dead": true, "keys": true}

// notices are the messages an action's redirect may ask a page to show,
// by code: a page never shows text from its URL.
var notices = map[string]string{
	"retried":      "The job was queued to run now.",
	"replayed":     "The dead letter was queued again.",
	"replayed_all": "The matching dead letters were queued again.",
}

// render writes page name with data: as JSON under /api/, else as HTML in
// the layout.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSON(w, status, data)
		return
	}
	v := view{Title: title, Page: name, Refresh: refreshing[name], Now: c.now().UTC(), Data: data}
	if p := principal(r); p != "" {
		v.CSRF = c.auth.csrf(p)
	}
	if n := notices[r.URL.Query().Get("done")]; n != "" {
		v.Notice = n
	}
	var b bytes.Buffer
	if err := c.pages.t[name].ExecuteTemplate(&b, "layout", v); err != nil {
		c.log.Error("console: rendering failed", "page", name, "error", err.Error())
		http.Error(w, "500 internal error: the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// problem answers a request the console cannot serve, with a message of
// its own (never the error's text, which may quote the request).
func (c *Console) problem(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	c.render(w, r, status, "problem", http.StatusText(status), msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// staticHandler serves the embedded stylesheet and script: the same bytes
// in every installation, so they need no token (the login page uses
// them).
func staticHandler() http.Handler {
	sub, _ := fs.Sub(assets, "assets/static")
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		if _, err := fs.Stat(sub, name); err != nil || !strings.Contains(name, ".") || strings.Contains(name, "/") {
			http.NotFound(w, r) // no listing, nothing but the files themselves
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + name
		files.ServeHTTP(w, r2)
	})
}
