package teams

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/chat"
	"github.com/stairhook/stairhook/receiver/internal/render"
	"github.com/stairhook/stairhook/receiver/sink"
)

// Bounds of a message.
const (
	// maxMessageBytes is Teams' limit on a message, 28 KB, which this
	// package applies to the whole JSON it posts. Past it people are left
	// out first, then the summary is cut, and a note says so.
	maxMessageBytes = 28 << 10

	// Bounds of single values, so that the fixed part of a card stays far
	// below maxMessageBytes whatever the payload holds.
	maxTitleText    = 300  // the title line
	maxNameText     = 200  // the account's name and domain
	maxFactText     = 200  // each fact's value
	maxPersonText   = 500  // a person's name, and the rest of the line
	maxEventIDText  = 300  // the event id in the last line
	maxFallbackText = 300  // the text a client shows when it cannot show the card
	maxLinkURL      = 2048 // a longer Staircase link is left out, never cut
)

// The envelope a Teams workflow takes, and the Adaptive Card inside.
const (
	messageType    = "message"
	cardType       = "application/vnd.microsoft.card.adaptive"
	cardSchema     = "http://adaptivecards.io/schemas/adaptive-card.json"
	cardVersion    = "1.5"
	omittedPeople  = " more people are not shown."
	shortenedText  = "The summary was shortened to fit a Teams message."
	onePersonShown = "1 more person is not shown."
)

// message is the body a Teams workflow webhook takes: one Adaptive Card
// in a message attachment.
type message struct {
	Type        string       `json:"type"`
	Attachments []attachment `json:"attachments"`
}

type attachment struct {
	ContentType string `json:"contentType"`
	Content     card   `json:"content"`
}

// card is an Adaptive Card 1.5 of RichTextBlocks: their TextRuns are shown
// as written, never read as markdown (a TextBlock's text would be), so
// payload text can format nothing and link nowhere.
type card struct {
	Schema       string    `json:"$schema"`
	Type         string    `json:"type"`
	Version      string    `json:"version"`
	FallbackText string    `json:"fallbackText,omitempty"`
	Body         []element `json:"body"`
	Actions      []action  `json:"actions,omitempty"`
}

// element is a RichTextBlock.
type element struct {
	Type      string `json:"type"`
	Inlines   []run  `json:"inlines"`
	Separator bool   `json:"separator,omitempty"`
}

// run is a TextRun.
type run struct {
	Type         string  `json:"type"`
	Text         string  `json:"text"`
	Weight       string  `json:"weight,omitempty"`
	Size         string  `json:"size,omitempty"`
	Color        string  `json:"color,omitempty"`
	IsSubtle     bool    `json:"isSubtle,omitempty"`
	SelectAction *action `json:"selectAction,omitempty"`
}

// action is an Action.OpenUrl.
type action struct {
	Type  string `json:"type"`
	Title string `json:"title,omitempty"`
	URL   string `json:"url"`
}

func text(s string) run        { return run{Type: "TextRun", Text: s} }
func bold(s string) run        { return run{Type: "TextRun", Text: s, Weight: "bolder"} }
func line(runs ...run) element { return element{Type: "RichTextBlock", Inlines: runs} }

// MessageBuilder turns events into Teams messages; the sink and the dry
// run (package dryrun) share it, so the dry run writes exactly what would
// be posted.
type MessageBuilder struct{}

// NewMessageBuilder returns the builder of the messages of route, or the
// route's problems (see Route.Check) without their config path. A card
// does not depend on the route: every Teams route shows the same content.
func NewMessageBuilder(route Route) (*MessageBuilder, error) {
	if errs := route.Check(""); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &MessageBuilder{}, nil
}

// ErrTooLarge reports an event whose card could not be made to fit
// maxMessageBytes; it cannot happen with the bounds above, and is
// permanent if it does.
var ErrTooLarge = errors.New("teams: card too large")

// Build returns the JSON the workflow webhook receives for ev: an Adaptive
// Card 1.5 in a message attachment, at most 28 KB. Errors are permanent.
func (b *MessageBuilder) Build(ev *event.Event) ([]byte, error) {
	c := chat.NewContent(ev)
	people := make([]element, len(c.People))
	for i, p := range c.People {
		people[i] = personLine(p)
	}
	summary := c.Summary
	encode := func(kept, summaryUnits int) ([]byte, error) {
		cut := summaryUnits < chat.Units(summary)
		return encodeMessage(c, people[:kept], len(people)+c.MorePeople-kept, chat.Clip(summary, summaryUnits), cut)
	}
	// All of it when it fits; else the most people that fit, then the
	// longest summary: each found by bisection, as the size grows with both.
	data, err := encode(len(people), chat.Units(summary))
	if err != nil || len(data) <= maxMessageBytes {
		return data, err
	}
	fits := func(kept, n int) bool {
		d, err := encode(kept, n)
		return err == nil && len(d) <= maxMessageBytes
	}
	kept := sort.Search(len(people)+1, func(k int) bool { return !fits(k, chat.Units(summary)) }) - 1
	if kept >= 0 {
		return encode(kept, chat.Units(summary))
	}
	n := sort.Search(chat.Units(summary)+1, func(n int) bool { return !fits(0, n) }) - 1
	// Cutting inside a blank line can drop a paragraph's separator: the
	// size is not quite monotonic in n, so make sure.
	for ; n >= 0; n-- {
		if fits(0, n) {
			return encode(0, n)
		}
	}
	return nil, sink.Permanent(sink.Classed("teams too large", fmt.Errorf("%w: event %q", ErrTooLarge, chat.Clip(c.EventID, 100))))
}

// personLine is one person: a bullet, the name in bold, the rest.
func personLine(p chat.Person) element {
	runs := []run{text("• ")}
	if p.Name != "" {
		runs = append(runs, bold(chat.Clip(p.Name, maxPersonText)))
		if p.Details != "" {
			runs = append(runs, text(", "))
		}
	}
	if p.Details != "" {
		runs = append(runs, text(chat.Clip(p.Details, maxPersonText)))
	}
	return line(runs...)
}

// encodeMessage lays out the card: the test notice, the title, the
// account with its link, the facts, the summary's paragraphs, the people,
// a note of what was left out, and the event id.
func encodeMessage(c chat.Content, people []element, omitted int, summary string, cut bool) ([]byte, error) {
	var body []element
	if c.Test {
		body = append(body, line(run{Type: "TextRun", Text: render.TestMarker + chat.TestNotice, Weight: "bolder", Color: "attention"}))
	}
	title := chat.Clip(render.WithTestMarker(&event.Event{Test: c.Test}, c.Title), maxTitleText)
	body = append(body, line(run{Type: "TextRun", Text: title, Weight: "bolder", Size: "large"}))

	link := c.Link
	if len(link) > maxLinkURL {
		link = ""
	}
	if c.Account != "" { // a TextRun's text is never empty
		name := text(chat.Clip(c.Account, maxNameText))
		if link != "" {
			name.SelectAction = &action{Type: "Action.OpenUrl", URL: link}
		}
		account := []run{bold("Account: "), name}
		if c.Domain != "" {
			account = append(account, text(" ("+chat.Clip(c.Domain, maxNameText)+")"))
		}
		body = append(body, line(account...))
	}
	for _, f := range c.Facts {
		body = append(body, line(bold(f.Label+": "), text(chat.Clip(f.Value, maxFactText))))
	}
	for i, p := range paragraphsOf(summary) {
		e := line(text(p))
		e.Separator = i == 0
		body = append(body, e)
	}
	if len(people) > 0 {
		heading := line(bold("People"))
		heading.Separator = true
		body = append(body, heading)
		body = append(body, people...)
	}
	if note := omittedNote(omitted, cut); note != "" {
		body = append(body, line(run{Type: "TextRun", Text: note, IsSubtle: true}))
	}
	body = append(body, line(run{Type: "TextRun", Text: "Staircase event " + chat.Clip(c.EventID, maxEventIDText), IsSubtle: true, Size: "small"}))

	cd := card{
		Schema: cardSchema, Type: "AdaptiveCard", Version: cardVersion,
		FallbackText: chat.Clip(title+" ("+c.Account+")", maxFallbackText),
		Body:         body,
	}
	if link != "" {
		cd.Actions = []action{{Type: "Action.OpenUrl", Title: "Open in Staircase", URL: link}}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // the card is read by Teams, not by a browser: no \u003c for <
	if err := enc.Encode(message{Type: messageType, Attachments: []attachment{{ContentType: cardType, Content: cd}}}); err != nil {
		return nil, sink.Permanent(sink.Classed("teams encode", fmt.Errorf("teams: encode card: %w", err)))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// paragraphsOf splits text at blank lines; a single line break stays in
// its paragraph's run, where Teams shows it.
func paragraphsOf(s string) []string {
	var out []string
	for _, p := range strings.Split(s, "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// omittedNote says what was left out: the number of people, and whether
// the summary was cut.
func omittedNote(people int, cut bool) string {
	var parts []string
	if cut {
		parts = append(parts, shortenedText)
	}
	switch people {
	case 0:
	case 1:
		parts = append(parts, onePersonShown)
	default:
		parts = append(parts, strconv.Itoa(people)+omittedPeople)
	}
	return strings.Join(parts, " ")
}
