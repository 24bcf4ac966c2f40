// Package chat is the content the chat sinks (packages slack and teams)
// show of an event, taken from it the same way: [NewContent] makes it,
// each sink lays it out in its own markup and clips it to its own limits.
// [OneLine] and [Paragraphs] shape payload text as the content does;
// [Units] and [Clip] count and cut text as Slack and Teams count
// characters.
package chat

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/render"
)

// Content is what a message says about an event, before a destination's
// markup: the one-line strings made so by OneLine, the summary by
// Paragraphs. Nothing in it is clipped yet: each destination clips to its
// own limits.
type Content struct {
	Test    bool
	Title   string // the signal's title and severity, never empty
	Account string // the account's name, else its id
	Link    string // the account's Staircase page, an https URL, or ""
	Domain  string
	Facts   []Fact
	Summary string // paragraphs separated by blank lines
	People  []Person
	// MorePeople counts the people past MaxPeople, never looked at.
	MorePeople int
	EventID    string
}

// Fact is one labelled value: severity, type, sentiment and so on.
type Fact struct{ Label, Value string }

// Person is one line of the people list: a name and the rest (title,
// role, change, previous title), either of which may be empty but not
// both.
type Person struct{ Name, Details string }

// TestNotice is the line a test event carries besides its [TEST] marker.
const TestNotice = "This is a test notification from Staircase."

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
	// MaxPeople bounds the people taken; the others are counted.
	MaxPeople = 100
)

// NewContent takes the content of ev.
func NewContent(ev *event.Event) Content {
	c := Content{
		Test:    ev.Test,
		Title:   defaultTitle(ev),
		Account: OneLine(ev.Account.Name),
		Domain:  OneLine(ev.Account.Domain),
		Summary: Paragraphs(bounded(ev.Signal.Summary, maxBodyBytes)),
		EventID: OneLine(ev.ID),
	}
	if c.Account == "" {
		c.Account = OneLine(ev.Account.ID)
	}
	c.Link = safeLink(ev.Account.StaircaseURL)
	for _, f := range []Fact{
		{"Severity", ev.Signal.Severity},
		{"Type", ev.Type},
		{"Sentiment", ev.Signal.Sentiment},
		{"Category", ev.Signal.Category},
		{"Account status", ev.Account.Status},
		{"Detected at", detectedAt(ev)},
	} {
		if f.Value = OneLine(f.Value); f.Value != "" {
			c.Facts = append(c.Facts, f)
		}
	}
	people := ev.People
	if len(people) > MaxPeople {
		c.MorePeople = len(people) - MaxPeople
		people = people[:MaxPeople]
	}
	for _, p := range people {
		if pp, ok := newPerson(p); ok {
			c.People = append(c.People, pp)
		}
	}
	return c
}

// defaultTitle is the signal's title and, in parentheses, its severity;
// "Staircase signal <type>" when the title is blank.
func defaultTitle(ev *event.Event) string {
	title := OneLine(ev.Signal.Title)
	if title == "" {
		title = strings.TrimSpace("Staircase signal " + OneLine(ev.Type))
	}
	if sev := OneLine(ev.Signal.Severity); sev != "" {
		title += " (" + sev + ")"
	}
	return title
}

func newPerson(p event.Person) (Person, bool) {
	var parts []string
	for _, s := range []string{p.Title, p.Role, p.Change} {
		if s = OneLine(s); s != "" {
			parts = append(parts, s)
		}
	}
	if pt := OneLine(p.PreviousTitle); pt != "" {
		parts = append(parts, "previously "+pt)
	}
	out := Person{Name: OneLine(p.Name), Details: strings.Join(parts, ", ")}
	return out, out.Name != "" || out.Details != ""
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
	return s[:i] + Ellipsis
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

// OneLine is payload text on one line, as every sink makes one-line
// fields (render.OneLine: no control or format characters at all, spaces
// collapsed, the ends trimmed), from at most maxLineBytes of it.
func OneLine(s string) string { return render.OneLine(bounded(s, maxLineBytes)) }

// Paragraphs is payload text made inert (see inert), with spaces trimmed
// at the ends of lines, runs of blank lines reduced to one and the ends
// trimmed.
func Paragraphs(s string) string {
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

// detectedAt is the signal's detection time (see render.DetectedAt) on
// one line and clipped; "" leaves the fact out.
func detectedAt(ev *event.Event) string {
	return Clip(OneLine(render.DetectedAt(ev)), maxRawDate)
}

// Units is the length of s in UTF-16 code units, as Slack and Teams count
// characters; a code point beyond the BMP, such as an emoji, counts two,
// so a limit kept in units is kept in code points too.
func Units(s string) int {
	n := 0
	for _, r := range s {
		n += RuneUnits(r)
	}
	return n
}

// RuneUnits is the length of r in UTF-16 code units, as Units counts it.
func RuneUnits(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// Ellipsis ends text that was cut.
const Ellipsis = "…"

// Clip returns s when it is at most max units long, else its longest
// prefix of whole code points that leaves room for an ellipsis, and the
// ellipsis: never more than max units, never a split UTF-8 sequence.
func Clip(s string, max int) string {
	if Units(s) <= max {
		return s
	}
	if max < 1 {
		return ""
	}
	n := 0
	for i, r := range s {
		if n+RuneUnits(r) > max-1 {
			return strings.TrimRight(s[:i], " \n") + Ellipsis
		}
		n += RuneUnits(r)
	}
	return s
}
