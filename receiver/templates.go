package receiver

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"

	"github.com/stairhook/stairhook/receiver/event"
)

// MaxTemplateOutput bounds what one template may produce for one event (a
// summary, a subject, a text or an HTML body). Past it the delivery fails
// with ErrTemplateOutputTooLarge, a permanent error: the same event and the
// same template would produce the same output again.
const MaxTemplateOutput = 256 << 10

// ErrTemplateOutputTooLarge reports a template whose output for an event
// exceeded MaxTemplateOutput. It is always wrapped with ErrPermanent.
var ErrTemplateOutputTooLarge = errors.New("receiver: template output exceeds MaxTemplateOutput")

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

// renderText runs a text/template for ev with output capped at max bytes.
// Every failure is permanent: the template and the event are fixed.
func renderText(t *texttemplate.Template, ev *event.Event, max int) (string, error) {
	return render(t.Name(), func(w *cappedBuffer) error { return t.Execute(w, ev) }, max)
}

// renderHTML is renderText for html/template, which escapes every payload
// string for its HTML context.
func renderHTML(t *htmltemplate.Template, ev *event.Event, max int) (string, error) {
	return render(t.Name(), func(w *cappedBuffer) error { return t.Execute(w, ev) }, max)
}

func render(name string, exec func(*cappedBuffer) error, max int) (string, error) {
	w := &cappedBuffer{max: max}
	if err := exec(w); err != nil {
		if errors.Is(err, errOutputFull) {
			return "", Permanent(&classedError{"template", fmt.Errorf("template %s: %w (%d bytes)", name, ErrTemplateOutputTooLarge, max)})
		}
		return "", Permanent(&classedError{"template", fmt.Errorf("template %s: %w", name, err)})
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
	// oneline replaces line breaks and other control characters by spaces.
	"oneline": oneLine,
}

// parseText parses a text/template in the form the routes use and runs it
// against a check event, so a misspelt field is a start-up error, not a
// delivery failure.
func parseText(name, src string) (*texttemplate.Template, error) {
	t, err := texttemplate.New(name).Funcs(templateFuncs).Option("missingkey=zero").Parse(src)
	if err != nil {
		return nil, err
	}
	if _, err := renderText(t, sampleEvent(), MaxTemplateOutput); isFieldTypo(err) {
		return nil, unwrapPermanent(err)
	}
	return t, nil
}

// parseHTML is parseText for html/template.
func parseHTML(name, src string) (*htmltemplate.Template, error) {
	t, err := htmltemplate.New(name).Funcs(templateFuncs).Option("missingkey=zero").Parse(src)
	if err != nil {
		return nil, err
	}
	if _, err := renderHTML(t, sampleEvent(), MaxTemplateOutput); isFieldTypo(err) {
		return nil, unwrapPermanent(err)
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

// unwrapPermanent returns the error Permanent wrapped, for messages that
// should not repeat the wrapper.
func unwrapPermanent(err error) error {
	var p *permanentError
	if errors.As(err, &p) {
		return p.err
	}
	return err
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

// oneLine makes s fit a single header or field line: CR, LF and every other
// control character become a space, runs of spaces collapse to one, and the
// ends are trimmed. Invalid UTF-8 becomes U+FFFD.
func oneLine(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
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

// truncateUTF16 cuts s to at most n UTF-16 code units (Jira counts field
// lengths the Java way) without splitting a rune.
func truncateUTF16(s string, n int) string {
	units := 0
	for i, r := range s {
		w := 1
		if r >= 0x10000 {
			w = 2
		}
		if units+w > n {
			return s[:i]
		}
		units += w
	}
	return s
}

// testMarker is the prefix that makes test events visible in every sink.
const testMarker = "[TEST] "

// withTestMarker prefixes s with the test marker for test events, unless the
// template already put it there.
func withTestMarker(ev *event.Event, s string) string {
	if ev.Test && !strings.HasPrefix(s, strings.TrimSpace(testMarker)) {
		return testMarker + s
	}
	return s
}
