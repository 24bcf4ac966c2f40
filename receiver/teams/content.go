package teams

// This file is the same in packages slack and teams, but for the package
// clause: the content both render, taken from the event the same way. It
// belongs in receiver/internal/render, shared; see the package notes.

import (
	"encoding/json"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/render"
)

// content is what a message says about an event, before a destination's
// markup: the one-line strings made so by render.OneLine, the summary
// made inert (see inert).
// Nothing in it is clipped yet: each destination clips to its own limits.
type content struct {
	test    bool
	title   string // the signal's title and severity, never empty
	account string // the account's name, else its id
	link    string // the account's Staircase page, an https URL, or ""
	domain  string
	facts   []fact
	summary string // paragraphs separated by blank lines
	people  []person
	// morePeople counts the people past maxPeople, never looked at.
	morePeople int
	eventID    string
}

// fact is one labelled value: severity, type, sentiment and so on.
type fact struct{ label, value string }

// person is one line of the people list: a name and the rest (title,
// role, change, previous title), either of which may be empty but not
// both.
type person struct{ name, details string }

// testNotice is the line a test event carries besides its [TEST] marker.
const testNotice = "This is a test notification from Staircase."

// Bounds on what is taken from an event, so that building a message is
// cheap whatever the event holds: no destination shows more.
const (
	// maxRawDate bounds the raw date text shown in place of one that did
	// not parse.
	maxRawDate = 100
	// maxLineBytes bounds each one-line value taken, in bytes of the
	// payload; a longer one ends with an ellipsis.
	maxLineBytes = 4 << 10
	// maxBodyBytes bounds the summary taken, likewise.
	maxBodyBytes = 64 << 10
	// maxPeople bounds the people taken; the others are counted.
	maxPeople = 100
)

// newContent takes the content of ev.
func newContent(ev *event.Event) content {
	c := content{
		test:    ev.Test,
		title:   defaultTitle(ev),
		account: oneLine(ev.Account.Name),
		domain:  oneLine(ev.Account.Domain),
		summary: paragraphs(bounded(ev.Signal.Summary, maxBodyBytes)),
		eventID: oneLine(ev.ID),
	}
	if c.account == "" {
		c.account = oneLine(ev.Account.ID)
	}
	c.link = safeLink(ev.Account.StaircaseURL)
	for _, f := range []fact{
		{"Severity", ev.Signal.Severity},
		{"Type", ev.Type},
		{"Sentiment", ev.Signal.Sentiment},
		{"Category", ev.Signal.Category},
		{"Account status", ev.Account.Status},
		{"Detected at", detectedAt(ev)},
	} {
		if f.value = oneLine(f.value); f.value != "" {
			c.facts = append(c.facts, f)
		}
	}
	people := ev.People
	if len(people) > maxPeople {
		c.morePeople = len(people) - maxPeople
		people = people[:maxPeople]
	}
	for _, p := range people {
		if pp, ok := newPerson(p); ok {
			c.people = append(c.people, pp)
		}
	}
	return c
}

// defaultTitle is the signal's title and, in parentheses, its severity;
// "Staircase signal <type>" when the title is blank.
func defaultTitle(ev *event.Event) string {
	title := oneLine(ev.Signal.Title)
	if title == "" {
		title = strings.TrimSpace("Staircase signal " + oneLine(ev.Type))
	}
	if sev := oneLine(ev.Signal.Severity); sev != "" {
		title += " (" + sev + ")"
	}
	return title
}

func newPerson(p event.Person) (person, bool) {
	var parts []string
	for _, s := range []string{p.Title, p.Role, p.Change} {
		if s = oneLine(s); s != "" {
			parts = append(parts, s)
		}
	}
	if pt := oneLine(p.PreviousTitle); pt != "" {
		parts = append(parts, "previously "+pt)
	}
	out := person{name: oneLine(p.Name), details: strings.Join(parts, ", ")}
	return out, out.name != "" || out.details != ""
}

// bounded is s cut to at most max bytes at a code point boundary, with an
// ellipsis when cut.
func bounded(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + ellipsis
}

// inert removes from multi-line payload text what no message should
// carry: invalid UTF-8 becomes U+FFFD (render.Body drops NUL); CR, CR LF
// and the Unicode line and paragraph separators become LF and tabs a
// space; every other control character (ESC, C1) is dropped, and so are
// the bidirectional embeddings, overrides and isolates (U+202A–U+202E,
// U+2066–U+2069), which reorder what a reader sees ("gnp.exe" shown as
// "exe.png"). The other format characters stay, as in render.Body:
// right-to-left text needs its marks.
func inert(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	s = render.Body(strings.ToValidUTF8(s, "\uFFFD"))
	for i, r := range s {
		switch {
		case r == '\n' || r == '\u2028' || r == '\u2029':
			b.WriteByte('\n')
		case r == '\r':
			if i+1 >= len(s) || s[i+1] != '\n' {
				b.WriteByte('\n')
			}
		case r == '\t':
			b.WriteByte(' ')
		case unicode.IsControl(r) || bidiControl(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// bidiControl reports the embedding, override and isolate controls.
func bidiControl(r rune) bool {
	return (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

// oneLine is payload text on one line, as every sink makes one-line
// fields (render.OneLine: no control or format characters at all, spaces
// collapsed, the ends trimmed), from at most maxLineBytes of it.
func oneLine(s string) string { return render.OneLine(bounded(s, maxLineBytes)) }

// paragraphs is inert text with spaces trimmed at the ends of lines,
// runs of blank lines reduced to one and the ends trimmed.
func paragraphs(s string) string {
	lines := strings.Split(inert(s), "\n")
	out := make([]string, 0, len(lines))
	blank := false
	for _, l := range lines {
		l = strings.TrimRight(l, " ")
		if strings.TrimSpace(l) == "" {
			blank = len(out) > 0
			continue
		}
		if blank {
			out = append(out, "")
			blank = false
		}
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

// safeLink returns the link to s that a message may carry: render.Link
// (an absolute URL with a host, without the user name and password it
// may hold), https only, with no whitespace, and with the characters that
// may not appear raw in a URL and would end a link in a markup (<, >, |,
// ", `, \\) percent-encoded, as a browser sends them; else "".
// javascript:, data:, http: and relative URLs are never linked.
func safeLink(s string) string {
	if strings.ContainsFunc(s, unicode.IsSpace) {
		return ""
	}
	l := render.Link(s)
	if !strings.HasPrefix(l, "https://") {
		return ""
	}
	return linkEscaper.Replace(l)
}

var linkEscaper = strings.NewReplacer("<", "%3C", ">", "%3E", "|", "%7C", `"`, "%22", "`", "%60", `\`, "%5C")

// detectedAt is the signal's detection time: in UTC when it parsed; else
// the value as received (event.Decode accepts dates it cannot parse and
// leaves the zero time), on one line and clipped; else "". Never the zero
// time.
func detectedAt(ev *event.Event) string {
	if !ev.Signal.DetectedAt.IsZero() {
		return ev.Signal.DetectedAt.UTC().Format("2006-01-02 15:04 UTC")
	}
	signal, _ := ev.Fields["signal"].(map[string]any)
	var raw string
	switch v := signal["detected_at"].(type) {
	case string:
		raw = v
	case json.Number:
		raw = v.String()
	}
	if _, err := time.Parse(time.RFC3339Nano, raw); err == nil {
		return "" // the zero time itself, sent as such
	}
	return clip(oneLine(raw), maxRawDate)
}

// units is the length of s in UTF-16 code units, as Slack and Teams count
// characters; a code point beyond the BMP, such as an emoji, counts two,
// so a limit kept in units is kept in code points too.
func units(s string) int {
	n := 0
	for _, r := range s {
		n += runeUnits(r)
	}
	return n
}

func runeUnits(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// ellipsis ends text that was cut.
const ellipsis = "…"

// clip returns s when it is at most max units long, else its longest
// prefix of whole code points that leaves room for an ellipsis, and the
// ellipsis: never more than max units, never a split UTF-8 sequence.
func clip(s string, max int) string {
	if units(s) <= max {
		return s
	}
	if max < 1 {
		return ""
	}
	n := 0
	for i, r := range s {
		if n+runeUnits(r) > max-1 {
			return strings.TrimRight(s[:i], " \n") + ellipsis
		}
		n += runeUnits(r)
	}
	return s
}
