package forward

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stairhook/stairhook/receiver/internal/render"
	"github.com/stairhook/stairhook/verify"
)

// Header families of Route.Headers: which three headers carry the id, the
// timestamp and the signature. Both carry the same values, computed the
// same way (SPEC.md, section 3); only the names differ.
const (
	// HeadersStaircase is x-staircase-id, x-staircase-timestamp and
	// x-staircase-signature, what Staircase itself sends. The default.
	HeadersStaircase = "staircase"
	// HeadersStandard is webhook-id, webhook-timestamp and
	// webhook-signature, for a destination that checks requests with a
	// Standard Webhooks library.
	HeadersStandard = "standard"
)

// Bounds of Route.ExtraHeaders.
const (
	// maxExtraHeaders is how many extra headers a route may set.
	maxExtraHeaders = 32
	// maxExtraHeaderBytes bounds the names and values of a route's extra
	// headers together, well below the 64 KiB or less of request headers
	// servers and proxies accept.
	maxExtraHeaderBytes = 8 << 10
)

// Route says where one route forwards its events and how they are signed.
// A forward route has no dry-run form: without a URL there is nothing to
// forward to.
type Route struct {
	// URL is the destination, such as "https://hooks.example.com/staircase".
	// Required. It must be https; http is accepted for a loopback
	// destination only (another stairhook on the same machine, a test
	// server), because the signed event, and any extra header, travel
	// in every request. It may carry a user and password, sent as Basic
	// authorization, and a query; the sink never shows either (see
	// package doc). A redirect is never followed.
	URL string `yaml:"url"`
	// Secret is the destination's signing secret, the whsec_… text (usually
	// "${FORWARD_SECRET}") the destination verifies with. Required. It never
	// appears in an error or a log line. One secret: to rotate it, add the
	// new secret to the destination's keyring beside the old one, change
	// this one, then retire the old one there.
	Secret string `yaml:"secret"`
	// Headers chooses the header family of the signature: HeadersStaircase
	// ("staircase", x-staircase-*) or HeadersStandard ("standard",
	// webhook-*). Default value is "staircase".
	Headers string `yaml:"headers"`
	// ExtraHeaders are sent with every request as they are, such as an
	// Authorization a destination asks for beside the signature. Default
	// value is none. At most 32, of at most 8 KiB together; names are HTTP
	// tokens, values printable ASCII. Headers the sink sets or that
	// change how the body is framed are refused (see Check). Values never
	// appear in an error or a log line.
	ExtraHeaders map[string]string `yaml:"extra_headers"`
	// Timeout bounds each request, response included. Default value is
	// 10 s; the queue's attempt timeout bounds it too.
	Timeout time.Duration `yaml:"timeout"`
}

// reservedHeaders are the headers an extra header may not set, in
// canonical form, with the reason Check gives.
var reservedHeaders = map[string]string{
	// Both families, whichever the route signs with: a receiver reads
	// x-staircase-signature first when present.
	"X-Staircase-Id":        "carries the signature",
	"X-Staircase-Timestamp": "carries the signature",
	"X-Staircase-Signature": "carries the signature",
	"Webhook-Id":            "carries the signature",
	"Webhook-Timestamp":     "carries the signature",
	"Webhook-Signature":     "carries the signature",
	"Content-Type":          "is set by the sink (application/json)",
	"Idempotency-Key":       "is set by the sink (the event id)",
	// Framing and connection headers belong to net/http; a
	// Content-Encoding would make the receiver decode the body into bytes
	// other than the signed ones.
	"Host":                "belongs to the URL",
	"Content-Length":      "frames the body",
	"Transfer-Encoding":   "frames the body",
	"Content-Encoding":    "would change the body the destination verifies",
	"Trailer":             "frames the body",
	"Te":                  "is a connection header",
	"Connection":          "is a connection header",
	"Keep-Alive":          "is a connection header",
	"Upgrade":             "is a connection header",
	"Proxy-Connection":    "is a connection header",
	"Proxy-Authorization": "is for a proxy, not the destination",
	"Expect":              "changes how the body is sent",
}

// Check reports every problem of r, each error naming its field under
// path, such as "webhooks[0].routes[1].forward.url: required". It never
// quotes the URL, the secret or an extra header's value, which may all
// hold credentials.
func (r *Route) Check(path string) []error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, render.FieldError(path, field, msg)) }
	u, err := parseURL(r.URL)
	if err != nil {
		bad("url", err.Error())
	}
	if strings.TrimSpace(r.Secret) == "" {
		bad("secret", "required (the whsec_ secret the destination verifies with)")
	} else if _, err := verify.ParseSecret(r.Secret); err != nil {
		bad("secret", `must be "whsec_" and canonical padded standard base64 of at least 16 bytes (the value is not shown)`)
	}
	switch r.Headers {
	case "", HeadersStaircase, HeadersStandard:
	default:
		bad("headers", `must be "staircase" (x-staircase-*, the default) or "standard" (webhook-*)`)
	}
	if r.Timeout < 0 {
		bad("timeout", "must not be negative")
	}
	errs = append(errs, checkExtraHeaders(path, r.ExtraHeaders, u != nil && u.User != nil)...)
	return errs
}

// checkExtraHeaders reports the problems of the extra headers, in the
// order of their names.
func checkExtraHeaders(path string, h map[string]string, basicAuth bool) []error {
	var errs []error
	field := func(name string) string { return "extra_headers." + name }
	bad := func(f, msg string) { errs = append(errs, render.FieldError(path, f, msg)) }
	if len(h) > maxExtraHeaders {
		bad("extra_headers", "at most "+strconv.Itoa(maxExtraHeaders)+" headers")
	}
	names := make([]string, 0, len(h))
	size := 0
	for name, value := range h {
		names = append(names, name)
		size += len(name) + len(value)
	}
	if size > maxExtraHeaderBytes {
		bad("extra_headers", "names and values together must be at most "+strconv.Itoa(maxExtraHeaderBytes)+" bytes")
	}
	sort.Strings(names)
	seen := map[string]string{}
	for _, name := range names {
		if !validName(name) {
			// The name is not shown either: it is not a header name, so it
			// may be anything, a pasted secret included.
			bad("extra_headers", "a header name must be HTTP token characters: letters, digits and !#$%&'*+-.^_`|~")
			continue
		}
		canon := http.CanonicalHeaderKey(name)
		if why, ok := reservedHeaders[canon]; ok {
			bad(field(name), why+"; it cannot be set here")
		} else if canon == "Authorization" && basicAuth {
			bad(field(name), "clashes with the user and password of the url (sent as Basic authorization)")
		} else if other, ok := seen[canon]; ok {
			bad(field(name), "names the same header as "+other+" (header names ignore case)")
		}
		seen[canon] = name
		if !validValue(h[name]) {
			bad(field(name), "the value must be printable ASCII on one line (it is not shown)")
		}
	}
	return errs
}

// parseURL parses and checks the destination URL. Its errors never quote
// it: it may carry a password or a token.
func parseURL(s string) (*url.URL, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("required (the URL events are forwarded to)")
	}
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, errors.New("must be an absolute http(s) URL (the value is not shown)")
	}
	if u.Fragment != "" {
		return nil, errors.New("must not have a fragment")
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return nil, errors.New("must be https (http only for a loopback destination: the signed event and any credentials travel in every request)")
	}
	return u, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validName reports whether s is an HTTP field name (an RFC 9110 token).
func validName(s string) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validValue reports whether s is printable ASCII (and tabs): nothing
// that could end the header line or that net/http would refuse to send.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c > 0x7e {
			return false
		}
	}
	return true
}
