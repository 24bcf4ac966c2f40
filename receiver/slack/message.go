package slack

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/chat"
	"github.com/stairhook/stairhook/receiver/internal/render"
	"github.com/stairhook/stairhook/receiver/sink"
)

// Slack's limits on a message (Block Kit), and the bounds this package
// keeps within them. Characters are counted in UTF-16 code units, which is
// never fewer than Slack's count.
const (
	// maxBlocks is Slack's limit on the blocks of a message.
	maxBlocks = 50
	// maxSectionText is Slack's limit on the text of a section (and of any
	// text object).
	maxSectionText = 3000
	// maxHeaderText is Slack's limit on a header's plain_text.
	maxHeaderText = 150
	// maxLinkURL bounds the URL of a link (<url|text>); a longer one is
	// left out, never cut: a cut URL would lead somewhere else.
	maxLinkURL = 255
	// maxMessageText bounds the text of all blocks together. Slack
	// documents no such limit, but answers msg_blocks_too_long from about
	// 13,000 characters; past this bound people are left out first, then
	// the body is cut.
	maxMessageText = 12000

	// Bounds of single values, well within the limits above, so that the
	// fixed part of a message stays small whatever the payload holds.
	maxNameText     = 200  // the account's name and domain
	maxFactText     = 200  // each fact's value (Slack allows 2,000 in a field)
	maxPersonText   = 1000 // one person's line
	maxEventIDText  = 300  // the event id in the context line
	maxFallbackText = 300  // the notification text

	// maxBodyText bounds the body taken from the template's output, which
	// may be far longer than a message holds.
	maxBodyText = 4 * maxMessageText
)

// MessageBuilder turns events into Slack messages; the sink and the dry run
// (package dryrun) share it, so the dry run writes exactly what would be
// posted.
type MessageBuilder struct {
	channel string
	title   *template.Template
	text    *template.Template
}

// NewMessageBuilder returns the builder of the messages of route, or the
// route's problems (see Route.Check) without their config path.
func NewMessageBuilder(route Route) (*MessageBuilder, error) {
	if errs := route.Check(""); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	b := &MessageBuilder{channel: route.Channel}
	var err error
	if b.title, err = render.ParseText("title", render.OrDefault(route.Title, DefaultTitle)); err != nil {
		return nil, err
	}
	if b.text, err = render.ParseText("text", render.OrDefault(route.Text, DefaultText)); err != nil {
		return nil, err
	}
	return b, nil
}

// Build returns the JSON of the message for ev, exactly as an incoming
// webhook receives it: Block Kit blocks with a notification text, and the
// route's channel when it names one. A bot token posts the same channel,
// text and blocks to chat.postMessage. Errors are permanent.
func (b *MessageBuilder) Build(ev *event.Event) ([]byte, error) {
	msg, err := b.Message(ev)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return nil, sink.Permanent(sink.Classed("slack encode", fmt.Errorf("slack: encode message: %w", err)))
	}
	return data, nil
}

// Message returns the message for ev, the value Build encodes. Errors are
// permanent.
func (b *MessageBuilder) Message(ev *event.Event) (*slack.WebhookMessage, error) {
	title, err := render.Text(b.title, ev, render.MaxOutput)
	if err != nil {
		return nil, err
	}
	body, err := render.Text(b.text, escapedEvent(ev), render.MaxOutput)
	if err != nil {
		return nil, err
	}
	c := chat.NewContent(ev)
	header := headerText(ev, title, c.Title)
	blocks := layout(c, header, defuseMentions(chat.Paragraphs(clipMrkdwn(body, maxBodyText))))
	no := false
	return &slack.WebhookMessage{
		Channel:     b.channel,
		Text:        fallbackText(header, c.Account),
		Blocks:      &slack.Blocks{BlockSet: blocks},
		UnfurlLinks: &no,
		UnfurlMedia: &no,
	}, nil
}

// headerText is the header's plain text: the rendered title on one line,
// the test marker, cut to maxHeaderText; the default title when the
// template made nothing. Slack parses nothing in plain text, so it is not
// escaped: "<!channel>" there is shown as written.
func headerText(ev *event.Event, rendered, fallback string) string {
	h := chat.OneLine(render.WithTestMarker(ev, chat.OneLine(rendered)))
	if h == "" || h == strings.TrimSpace(render.TestMarker) {
		h = render.WithTestMarker(ev, fallback)
	}
	return chat.Clip(defuseMentions(h), maxHeaderText)
}

// fallbackText is the message's top-level text, which notifications and
// clients without blocks show: the header and the account, escaped.
func fallbackText(header, account string) string {
	return escClip(defuseMentions(header+" ("+account+")"), maxFallbackText)
}

// layout arranges the content in blocks within Slack's limits: the
// header, the test notice, the account with its facts, the body, one
// section per person, a note of what was left out, and the context line
// with the event id. Past maxBlocks or maxMessageText, people are left
// out from the end first, then the body is cut.
func layout(c chat.Content, header, body string) []slack.Block {
	var head []slack.Block
	head = append(head, slack.NewHeaderBlock(plain(header)))
	if c.Test {
		head = append(head, section("*[TEST]* "+chat.TestNotice))
	}
	head = append(head, accountSection(c))
	tail := slack.NewContextBlock("", mrkdwn("Staircase event "+escClip(defuseMentions(c.EventID), maxEventIDText)))
	fixed := len(head) + 1
	fixedText := blocksText(head) + blocksText([]slack.Block{tail})

	chunks := chunkMrkdwn(body, maxSectionText)
	bodyText := 0
	for _, ch := range chunks {
		bodyText += chat.Units(ch)
	}
	people := make([]string, len(c.People))
	for i, p := range c.People {
		people[i] = personText(p, i == 0)
	}
	fits := func(blocks, text int) bool { return blocks <= maxBlocks && text <= maxMessageText }

	// The most people that fit: all of them without a note, else as many
	// as fit beside the note that counts the others (and those past
	// maxPeople, never looked at).
	kept, peopleText := len(people), 0
	for _, p := range people {
		peopleText += chat.Units(p)
	}
	all := len(people) + c.MorePeople
	note := ""
	if c.MorePeople > 0 || !fits(fixed+len(chunks)+kept, fixedText+bodyText+peopleText) {
		noteText := chat.Units(omittedNote(all, false))
		for kept > 0 && !fits(fixed+len(chunks)+kept+1, fixedText+bodyText+peopleText+noteText) {
			kept--
			peopleText -= chat.Units(people[kept])
		}
		note = omittedNote(all-kept, false)
		if kept == 0 && !fits(fixed+len(chunks)+1, fixedText+bodyText+noteText) {
			// Even without people the body is too long: cut it.
			note = omittedNote(all, true)
			chunks = fitChunks(chunks, maxBlocks-fixed-1, maxMessageText-fixedText-chat.Units(note))
		}
	}

	blocks := append([]slack.Block(nil), head...)
	for _, ch := range chunks {
		blocks = append(blocks, section(ch))
	}
	for _, p := range people[:kept] {
		blocks = append(blocks, section(p))
	}
	if note != "" {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(note)))
	}
	return append(blocks, tail)
}

// omittedNote says what layout left out: the number of people, and
// whether the body was cut.
func omittedNote(people int, cut bool) string {
	var parts []string
	if cut {
		parts = append(parts, "The text was shortened to fit a Slack message.")
	}
	switch people {
	case 0:
	case 1:
		parts = append(parts, "1 more person is not shown.")
	default:
		parts = append(parts, strconv.Itoa(people)+" more people are not shown.")
	}
	return strings.Join(parts, " ")
}

// fitChunks keeps the body chunks that fit in maxChunks blocks and
// maxText characters, cutting the last one kept.
func fitChunks(chunks []string, maxChunks, maxText int) []string {
	var out []string
	for _, ch := range chunks {
		if len(out) == maxChunks || maxText <= chat.Units(chat.Ellipsis) {
			break
		}
		if chat.Units(ch) > maxText {
			ch = clipMrkdwn(ch, maxText)
		}
		if strings.TrimSpace(ch) == chat.Ellipsis || strings.TrimSpace(ch) == "" {
			break
		}
		out = append(out, ch)
		maxText -= chat.Units(ch)
	}
	return out
}

// accountSection is the account, linked to its Staircase page when the
// URL is safe and short enough, with the facts as fields.
func accountSection(c chat.Content) *slack.SectionBlock {
	name := escClip(defuseMentions(c.Account), maxNameText)
	if c.Link != "" && chat.Units(escape(c.Link)) <= maxLinkURL && name != "" {
		name = "<" + escape(c.Link) + "|" + name + ">"
	}
	text := "*Account:* " + name
	if c.Domain != "" {
		text += " (" + escClip(defuseMentions(c.Domain), maxNameText) + ")"
	}
	var fields []*slack.TextBlockObject
	for _, f := range c.Facts {
		fields = append(fields, mrkdwn("*"+f.Label+"*\n"+escClip(defuseMentions(f.Value), maxFactText)))
	}
	return slack.NewSectionBlock(mrkdwn(text), fields, nil)
}

// personText is one person's section: a bullet, the name in bold, the
// rest; the first carries the "People" heading.
func personText(p chat.Person, first bool) string {
	s := "• "
	if first {
		s = "*People*\n" + s
	}
	if p.Name != "" {
		s += "*" + escClip(defuseMentions(p.Name), maxPersonText/2) + "*"
		if p.Details != "" {
			s += ", "
		}
	}
	return s + escClip(defuseMentions(p.Details), maxPersonText/2)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

// mrkdwn is a mrkdwn text object with verbatim set, so that Slack does not
// turn plain text into links or mentions; the markup this package writes
// (and a route's template) still applies.
func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, true)
}

func section(s string) *slack.SectionBlock {
	return slack.NewSectionBlock(mrkdwn(s), nil, nil)
}

// blocksText is the text of blocks as maxMessageText counts it.
func blocksText(blocks []slack.Block) int {
	n := 0
	for _, b := range blocks {
		switch b := b.(type) {
		case *slack.HeaderBlock:
			n += chat.Units(b.Text.Text)
		case *slack.SectionBlock:
			if b.Text != nil {
				n += chat.Units(b.Text.Text)
			}
			for _, f := range b.Fields {
				n += chat.Units(f.Text)
			}
		case *slack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if t, ok := e.(*slack.TextBlockObject); ok {
					n += chat.Units(t.Text)
				}
			}
		}
	}
	return n
}

// mrkdwnEscaper escapes the three characters Slack's mrkdwn gives meaning
// to: with them escaped, text cannot open a link (<https://…|…>), a
// mention (<@U…>, <!channel>, <!here>) or a date.
var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func escape(s string) string { return mrkdwnEscaper.Replace(s) }

// broadcast finds the words that Slack may turn into a broadcast mention
// when they follow "@".
var broadcast = regexp.MustCompile(`(?i)@(channel|here|everyone)\b`)

// defuseMentions puts a word joiner (U+2060) between "@" and channel,
// here or everyone: escaping and verbatim text already keep Slack from
// parsing them, and this keeps a client that would still from notifying
// a whole channel. The text reads the same.
func defuseMentions(s string) string {
	return broadcast.ReplaceAllString(s, "@\u2060$1")
}

// escClip escapes s and cuts it to max units, never inside an entity or
// a UTF-8 sequence.
func escClip(s string, max int) string {
	if chat.Units(s) <= max && !strings.ContainsAny(s, "&<>") {
		return s
	}
	return clipMrkdwn(escape(s), max)
}

// entityAt is the length of the escape at the start of s ("&amp;",
// "&lt;", "&gt;"), or 0.
func entityAt(s string) int {
	for _, e := range [...]string{"&amp;", "&lt;", "&gt;"} {
		if strings.HasPrefix(s, e) {
			return len(e)
		}
	}
	return 0
}

// tokenEnd returns the end of the longest prefix of s that is at most max
// units long and ends between tokens (whole code points, whole escapes).
func tokenEnd(s string, max int) int {
	n, i := 0, 0
	for i < len(s) {
		size, w := entityAt(s[i:]), 0
		if size > 0 {
			w = size
		} else {
			r, rs := utf8.DecodeRuneInString(s[i:])
			size, w = rs, chat.RuneUnits(r)
		}
		if n+w > max {
			return i
		}
		n += w
		i += size
	}
	return i
}

// clipMrkdwn cuts escaped text to max units with an ellipsis, never
// inside an escape or a UTF-8 sequence.
func clipMrkdwn(s string, max int) string {
	if chat.Units(s) <= max {
		return s
	}
	if max < 1 {
		return ""
	}
	return strings.TrimRight(s[:tokenEnd(s, max-1)], " \n") + chat.Ellipsis
}

// chunkMrkdwn splits escaped text into pieces of at most max units, at a
// blank line, a line break or a space where one lies in the second half
// of a piece, else between tokens. Empty pieces are dropped: Slack wants
// at least one character in a text.
func chunkMrkdwn(s string, limit int) []string {
	var out []string
	for s != "" {
		end := tokenEnd(s, limit)
		next := end
		if end < len(s) {
			for _, sep := range []string{"\n\n", "\n", " "} {
				if i := strings.LastIndex(s[:end], sep); i > end/2 {
					end, next = i, i+len(sep)
					break
				}
			}
			if end == 0 { // a token wider than limit (limit < 5): take it whole
				_, size := utf8.DecodeRuneInString(s)
				end = max(entityAt(s), size)
				next = end
			}
		}
		if piece := strings.TrimSpace(s[:end]); piece != "" {
			out = append(out, piece)
		}
		s = s[next:]
	}
	return out
}
