package jira

import (
	"regexp"
	"strings"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/render"
)

// adfNode is one node of an Atlassian Document Format document, the rich
// text that Jira Cloud's REST API v3 takes for descriptions. Only the node
// and mark types the description uses are built; the full schema is
// @atlaskit/adf-schema json-schema/v1/full.json, which the tests enforce.
type adfNode struct {
	Type    string     `json:"type"`
	Version int        `json:"version,omitempty"`
	Attrs   *adfAttrs  `json:"attrs,omitempty"`
	Content []*adfNode `json:"content,omitempty"`
	Text    string     `json:"text,omitempty"`
	Marks   []adfMark  `json:"marks,omitempty"`
}

type adfAttrs struct {
	Level int `json:"level,omitempty"`
}

type adfMark struct {
	Type  string        `json:"type"`
	Attrs *adfMarkAttrs `json:"attrs,omitempty"`
}

type adfMarkAttrs struct {
	Href string `json:"href"`
}

var (
	strong = adfMark{Type: "strong"}
	// newlines split text into lines; a blank line splits paragraphs.
	newlines     = regexp.MustCompile(`\r\n|\r|\n|\x{2028}|\x{2029}`)
	blankLine    = regexp.MustCompile(`(\r\n|\r|\n|\x{2028}|\x{2029})[ \t]*(\r\n|\r|\n|\x{2028}|\x{2029})+`)
	controlChars = regexp.MustCompile(`[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]`)
)

// adfText returns the inline nodes for s: one text node per line, hardBreak
// nodes between lines, and nothing for empty lines, so the document never
// holds an empty text node (the schema forbids it) or a raw newline inside
// a text node (Jira shows it literally, or not at all). Control characters
// other than line breaks and tabs are dropped.
func adfText(s string, marks ...adfMark) []*adfNode {
	s = controlChars.ReplaceAllString(strings.ToValidUTF8(s, "\uFFFD"), "")
	var out []*adfNode
	for _, line := range newlines.Split(s, -1) {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if len(out) > 0 {
			out = append(out, &adfNode{Type: "hardBreak"})
		}
		out = append(out, &adfNode{Type: "text", Text: line, Marks: marks})
	}
	return out
}

// adfParagraph joins inline runs into one paragraph, or returns nil when
// they are all empty (an empty paragraph is valid but useless).
func adfParagraph(runs ...[]*adfNode) *adfNode {
	p := &adfNode{Type: "paragraph"}
	for _, r := range runs {
		p.Content = append(p.Content, r...)
	}
	if len(p.Content) == 0 {
		return nil
	}
	return p
}

// adfLabelled is a paragraph "Label: value", value made one line, or nil
// when value is empty.
func adfLabelled(label, value string) *adfNode {
	v := adfText(render.OneLine(value))
	if len(v) == 0 {
		return nil
	}
	return adfParagraph(adfText(label+": ", strong), v)
}

// adfParagraphs splits s at blank lines into paragraphs.
func adfParagraphs(s string) []*adfNode {
	var out []*adfNode
	for _, part := range blankLine.Split(s, -1) {
		if p := adfParagraph(adfText(part)); p != nil {
			out = append(out, p)
		}
	}
	return out
}

// buildDescription is the issue description for ev: the account (linked to
// its Staircase page), the signal, its severity and the people concerned as
// a bullet list. Every value but the summary is a one-line field (see
// render.OneLine); the summary keeps its lines and paragraphs.
func buildDescription(ev *event.Event) *adfNode {
	doc := &adfNode{Type: "doc", Version: 1}
	add := func(n ...*adfNode) {
		for _, x := range n {
			if x != nil {
				doc.Content = append(doc.Content, x)
			}
		}
	}
	if ev.Test {
		add(adfParagraph(adfText("[TEST] This is a test notification from Staircase.", strong)))
	}

	name := render.OneLine(ev.Account.Name)
	if name == "" {
		name = render.OneLine(ev.Account.ID)
	}
	var account []*adfNode
	if href := render.Link(ev.Account.StaircaseURL); href != "" {
		account = adfText(name, adfMark{Type: "link", Attrs: &adfMarkAttrs{Href: href}})
	} else {
		account = adfText(name)
	}
	if len(account) > 0 {
		var extra []*adfNode
		if domain := render.OneLine(ev.Account.Domain); domain != "" {
			extra = adfText(" (" + domain + ")")
		}
		add(adfParagraph(adfText("Account: ", strong), account, extra))
	}

	if title := adfText(render.OneLine(ev.Signal.Title)); len(title) > 0 {
		add(&adfNode{Type: "heading", Attrs: &adfAttrs{Level: 3}, Content: title})
	}
	add(adfParagraphs(ev.Signal.Summary)...)
	add(
		adfLabelled("Severity", ev.Signal.Severity),
		adfLabelled("Type", ev.Type),
		adfLabelled("Sentiment", ev.Signal.Sentiment),
		adfLabelled("Category", ev.Signal.Category),
		adfLabelled("Account status", ev.Account.Status),
	)
	add(adfLabelled("Detected at", detectedAt(ev)))

	list := &adfNode{Type: "bulletList"}
	for _, p := range ev.People {
		if item := adfPerson(p); item != nil {
			list.Content = append(list.Content, item)
		}
	}
	if len(list.Content) > 0 { // the schema wants at least one item
		add(adfParagraph(adfText("People", strong)), list)
	}

	add(adfParagraph(adfText("Staircase event " + ev.ID)))
	return doc
}

// adfPerson is one bullet: name, title, role, change and previous title,
// whichever are set; nil when none is.
func adfPerson(p event.Person) *adfNode {
	var parts []string
	for _, s := range []string{p.Title, p.Role, p.Change} {
		if s = render.OneLine(s); s != "" {
			parts = append(parts, s)
		}
	}
	if pt := render.OneLine(p.PreviousTitle); pt != "" {
		parts = append(parts, "previously "+pt)
	}
	name := render.OneLine(p.Name)
	var rest []*adfNode
	if len(parts) > 0 {
		sep := ""
		if name != "" {
			sep = ", "
		}
		rest = adfText(sep + strings.Join(parts, ", "))
	}
	para := adfParagraph(adfText(name, strong), rest)
	if para == nil {
		return nil
	}
	return &adfNode{Type: "listItem", Content: []*adfNode{para}}
}

// maxRawDate bounds the raw date text shown in place of one that did not
// parse.
const maxRawDate = 100

// detectedAt is the signal's detection time as the description shows it
// (see render.DetectedAt), made one line and clipped; "" leaves the line
// out.
func detectedAt(ev *event.Event) string {
	return clip(render.OneLine(render.DetectedAt(ev)), maxRawDate)
}
