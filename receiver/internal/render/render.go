// Package render is what the built-in sinks (packages jira, email and
// dryrun) share to turn an event and a route's settings into text.
//
// [ParseText] and [ParseHTML] parse a route's template and run it against a
// check event, so a misspelt field is a start-up error; [Text] and [HTML]
// run it for an event with its output capped at [MaxOutput]. [OneLine] and
// [WithTestMarker] shape a header or a field from payload text, [Body] a
// message body: every sink that puts payload text somewhere passes it
// through one of them. [Link] vets a URL from the payload before a sink
// shows it or links to it. [WebhookOf] names the webhook a built-in sink
// serves. [OrDefault] and [FieldError] give route settings their defaults
// and their errors the config path they belong to.
package render

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/sink"
)

// MaxOutput bounds what one template may produce for one event (a summary,
// a subject, a text or an HTML body): receiver.MaxTemplateOutput. Past it
// the delivery fails with ErrOutputTooLarge, a permanent error: the same
// event and the same template would produce the same output again.
const MaxOutput = 256 << 10

// ErrOutputTooLarge reports a template whose output for an event exceeded
// MaxOutput: receiver.ErrTemplateOutputTooLarge. It is always wrapped with
// sink.ErrPermanent.
var ErrOutputTooLarge = errors.New("receiver: template output exceeds MaxTemplateOutput")

// errOutputFull is returned by cappedBuffer.Write once the cap is passed; the
// template engines stop at the first write error.
var errOutputFull = errors.New("output full")

// cappedBuffer accepts at most max bytes and then fails every write.
type cappedBuffer struct {
	buf bytes.Buffer
	max int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if c.buf.Len()+len(p) > c.max {
		return 0, errOutputFull
	}
	return c.buf.Write(p)
}

// Text runs a text/template for ev with output capped at max bytes.
// Every failure is permanent: the template and the event are fixed.
func Text(t *texttemplate.Template, ev *event.Event, max int) (string, error) {
	s, err := renderText(t, ev, max)
	return s, sink.Permanent(err)
}

// HTML is Text for html/template, which escapes every payload string for
// its HTML context.
func HTML(t *htmltemplate.Template, ev *event.Event, max int) (string, error) {
	s, err := renderHTML(t, ev, max)
	return s, sink.Permanent(err)
}

// renderText and renderHTML are Text and HTML without the permanent mark,
// for the check at parse time, whose error is a configuration error.
func renderText(t *texttemplate.Template, ev *event.Event, max int) (string, error) {
	return execute(t.Name(), func(w *cappedBuffer) error { return t.Execute(w, ev) }, max)
}

func renderHTML(t *htmltemplate.Template, ev *event.Event, max int) (string, error) {
	return execute(t.Name(), func(w *cappedBuffer) error { return t.Execute(w, ev) }, max)
}

func execute(name string, exec func(*cappedBuffer) error, max int) (string, error) {
	w := &cappedBuffer{max: max}
	if err := exec(w); err != nil {
		if errors.Is(err, errOutputFull) {
			return "", sink.Classed("template", fmt.Errorf("template %s: %w (%d bytes)", name, ErrOutputTooLarge, max))
		}
		return "", sink.Classed("template", fmt.Errorf("template %s: %w", name, err))
	}
	return w.buf.String(), nil
}

// templateFuncs are available in every template. They only format values
// already in the event; none of them reaches outside.
var templateFuncs = map[string]any{
	// upper and lower change case, for severities in subjects.
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	// date formats a time as 2006-01-02 15:04 UTC; the zero time is "".
	"date": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	// oneline makes a value one line: see OneLine.
	"oneline": OneLine,
	// link is a URL fit to show and follow, or "": see Link.
	"link": Link,
}

// ParseText parses a text/template in the form the routes use and runs it
// against a check event, so a misspelt field is a start-up error, not a
// delivery failure.
func ParseText(name, src string) (*texttemplate.Template, error) {
	t, err := texttemplate.New(name).Funcs(templateFuncs).Option("missingkey=zero").Parse(src)
	if err != nil {
		return nil, err
	}
	if _, err := renderText(t, sampleEvent(), MaxOutput); isFieldTypo(err) {
		return nil, err
	}
	return t, nil
}

// ParseHTML is ParseText for html/template.
func ParseHTML(name, src string) (*htmltemplate.Template, error) {
	t, err := htmltemplate.New(name).Funcs(templateFuncs).Option("missingkey=zero").Parse(src)
	if err != nil {
		return nil, err
	}
	if _, err := renderHTML(t, sampleEvent(), MaxOutput); isFieldTypo(err) {
		return nil, err
	}
	return t, nil
}

// isFieldTypo reports a template error that names a field the event.Event type
// does not have. Other execution errors on the check event (an index out of
// range, a missing key in .Fields) depend on the payload and are left to
// delivery time. The template packages export no typed error for this, so
// the check reads the message.
func isFieldTypo(err error) bool {
	return err != nil && strings.Contains(err.Error(), "can't evaluate field")
}

// sampleEvent is the event templates are checked against at start-up: every
// field set, one person, so a template that ranges over people runs too.
func sampleEvent() *event.Event {
	return &event.Event{
		ID: "evt_check", Type: event.TypeChurnRisk, CreatedAt: time.Unix(0, 0).UTC(),
		Account: event.Account{ID: "acc_check", Name: "Account", StaircaseURL: "https://app.staircase.ai/"},
		Signal:  event.Signal{Title: "Title", Summary: "Summary", Severity: "high"},
		People:  []event.Person{{Name: "Name", Title: "Title", Role: "role", Change: "joined"}},
		Fields:  map[string]any{},
	}
}

// OneLine makes s fit a single header or field line (a subject, a summary,
// a title, a name): NUL and every Unicode format character (category Cf:
// the bidi controls U+202A–U+202E and U+2066–U+2069, U+200E and U+200F,
// zero-width characters such as U+200B, the BOM U+FEFF, …) are removed, so
// payload text cannot make a line read backwards or hide what it says; CR,
// LF and every other control character become a space; runs of spaces
// collapse to one; and the ends are trimmed. Invalid UTF-8 becomes U+FFFD.
func OneLine(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if stripped(r) {
			continue
		}
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == '\u2028' || r == '\u2029' {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Body makes s fit a message body or a description, which may span lines
// and keeps its format characters (right-to-left text needs them): only
// NUL is removed, which no mail or issue text should carry.
func Body(s string) string {
	return strings.ReplaceAll(s, "\x00", "")
}

// Link returns s as a link the sinks show and let readers follow: an
// absolute http or https URL with a host, on one line, with the user name
// and password a URL can carry removed, so no credential is shown and
// "https://app.staircase.ai@evil.example/" shows the host it leads to. It
// returns "" for anything else (javascript:, data:, relative URLs).
func Link(s string) string {
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || stripped(r) || r == '\u2028' || r == '\u2029' }) >= 0 {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	u.User = nil
	return u.String()
}

// stripped reports whether OneLine removes r: NUL, or a Unicode format
// character.
func stripped(r rune) bool {
	return r == 0 || unicode.Is(unicode.Cf, r)
}

// TestMarker is the prefix that makes test events visible in every sink.
const TestMarker = "[TEST] "

// WithTestMarker prefixes s with the test marker for test events, unless the
// template already put it there.
func WithTestMarker(ev *event.Event, s string) string {
	if ev.Test && !strings.HasPrefix(s, strings.TrimSpace(TestMarker)) {
		return TestMarker + s
	}
	return s
}

// OrDefault is s, or def when s is blank: a route's template or address
// left out of the configuration.
func OrDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

// WebhookOf returns the webhook a built-in sink serves, from the sink's
// name: receiver names them <webhook>.<route>.<jira|email>, and webhook
// names have no ".", so it is the part before the first "." (the whole
// name when there is none). The webhook is the one the request was
// authenticated for, its path /webhooks/{name}, not anything the body
// says.
func WebhookOf(sinkName string) string {
	webhook, _, _ := strings.Cut(sinkName, ".")
	return webhook
}

// FieldError prefixes msg with the field's config path, such as
// "webhooks[0].routes[1].jira.project: required". An empty path leaves the
// field alone.
func FieldError(path, field, msg string) error {
	if path != "" {
		field = path + "." + field
	}
	return fmt.Errorf("%s: %s", field, msg)
}
