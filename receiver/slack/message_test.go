package slack

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/render"
	"github.com/stairhook/stairhook/receiver/internal/sinktest"
	"github.com/stairhook/stairhook/receiver/sink"
)

// evilEvent is sinktest.HostileEvent with Slack's own metacharacters and
// mentions, markdown, a right-to-left override, and long multi-byte text in
// every field.
func evilEvent() *event.Event {
	ev := sinktest.HostileEvent()
	ev.Signal.Title = "<!channel> @here *bold* _it_ ~s~ `code` <https://evil.example|click> \u202Egnp.exe & <@U123>"
	ev.Signal.Summary = "Hi <!here> & <@U0123> <#C0123> <!subteam^S1> @channel @EVERYONE <!date^1|x>\n" +
		"> quote\n```code``` [md](https://evil.example) **md** # h &amp; &lt;\u200b\ufeff\u2066x\u2069\n\n" +
		strings.Repeat("é😀", 4000)
	ev.Signal.Severity = "high <b>"
	ev.Account.Name = "<https://evil.example|Acme> & Co @here"
	ev.Account.Domain = "acme.com <!channel>"
	ev.People = append(ev.People,
		event.Person{Name: "<!everyone>", Title: strings.Repeat("ü", 3000), Role: "@channel"},
		event.Person{Name: "\u202Eevil", PreviousTitle: "<https://evil.example|x>"},
	)
	return ev
}

// testEvents are the events the builder tests render: those of
// sinktest.ChatEvents, and unparsed dates.
func testEvents(t testing.TB) map[string]*event.Event {
	t.Helper()
	events := sinktest.ChatEvents(t, evilEvent)
	ev, err := event.Decode([]byte(`{"id":"evt_1","type":"churn_risk","account":{"id":"acc_1"},"signal":{"title":"T","detected_at":"yesterday\n\u0000<b>"}}`))
	require.NoError(t, err)
	events["bad-date"] = ev
	return events
}

func build(t testing.TB, route Route, ev *event.Event) *slack.WebhookMessage {
	t.Helper()
	b, err := NewMessageBuilder(route)
	require.NoError(t, err)
	data, err := b.Build(ev)
	require.NoError(t, err)
	// What the JSON decodes to with slack-go's own types, as Slack reads it.
	var msg slack.WebhookMessage
	require.NoError(t, json.Unmarshal(data, &msg))
	require.NotNil(t, msg.Blocks)
	return &msg
}

func TestMessageWithinLimitsAndInert(t *testing.T) {
	for name, ev := range testEvents(t) {
		t.Run(name, func(t *testing.T) {
			msg := build(t, Route{}, ev)
			require.NoError(t, checkMessage(msg.Text, msg.Blocks.BlockSet))
		})
	}
}

// allText is every text of a message, joined: the notification text and
// the blocks' texts in order.
func allText(msg *slack.WebhookMessage) string {
	return msg.Text + "\n" + headerOf(msg) + "\n" + mrkdwnText(msg)
}

func headerOf(msg *slack.WebhookMessage) string {
	return msg.Blocks.BlockSet[0].(*slack.HeaderBlock).Text.Text
}

// mrkdwnText is the text of every block but the header, joined.
func mrkdwnText(msg *slack.WebhookMessage) string {
	var parts []string
	for _, b := range msg.Blocks.BlockSet {
		switch b := b.(type) {
		case *slack.SectionBlock:
			if b.Text != nil {
				parts = append(parts, b.Text.Text)
			}
			for _, f := range b.Fields {
				parts = append(parts, f.Text)
			}
		case *slack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				parts = append(parts, e.(*slack.TextBlockObject).Text)
			}
		}
	}
	return strings.Join(parts, "\n")
}

func TestMessageContent(t *testing.T) {
	data, err := event.Sample(event.TypeChurnRisk)
	require.NoError(t, err)
	ev, err := event.Decode(data)
	require.NoError(t, err)
	msg := build(t, Route{}, ev)
	blocks := msg.Blocks.BlockSet
	require.Len(t, blocks, 6, "header, account, summary, two people, context")
	assert.Equal(t, "Churn risk detected (high)", blocks[0].(*slack.HeaderBlock).Text.Text)
	account := blocks[1].(*slack.SectionBlock)
	assert.Equal(t, "*Account:* <https://app.staircase.ai/accounts/acc_01J9Z3K7QK2V8M4N6P0R2T4V6X|Acme Corp> (acme.com)", account.Text.Text)
	var fields []string
	for _, f := range account.Fields {
		fields = append(fields, f.Text)
	}
	assert.Equal(t, []string{"*Severity*\nhigh", "*Type*\nchurn_risk", "*Sentiment*\nnegative", "*Category*\nrisk",
		"*Account status*\nactive", "*Detected at*\n2026-11-26 09:05 UTC"}, fields)
	assert.Equal(t, ev.Signal.Summary, blocks[2].(*slack.SectionBlock).Text.Text)
	assert.Equal(t, "*People*\n• *Luis Ortega*, Director of Support, champion", blocks[3].(*slack.SectionBlock).Text.Text)
	assert.Equal(t, "• *Dana Whitfield*, VP Customer Operations, decision_maker", blocks[4].(*slack.SectionBlock).Text.Text)
	ctx := blocks[5].(*slack.ContextBlock).ContextElements.Elements[0].(*slack.TextBlockObject)
	assert.Equal(t, "Staircase event evt_01JD3QX8M2A1B4C6D8E0F2G4H6", ctx.Text)
	assert.Equal(t, "Churn risk detected (high) (Acme Corp)", msg.Text)
	assert.False(t, *msg.UnfurlLinks)
	assert.False(t, *msg.UnfurlMedia)
	assert.Empty(t, msg.Channel)

	// A test event says so twice: in the header and in a notice.
	ev.Test = true
	msg = build(t, Route{Channel: "#cs-alerts"}, ev)
	assert.Equal(t, "[TEST] Churn risk detected (high)", msg.Blocks.BlockSet[0].(*slack.HeaderBlock).Text.Text)
	assert.Equal(t, "*[TEST]* This is a test notification from Staircase.", msg.Blocks.BlockSet[1].(*slack.SectionBlock).Text.Text)
	assert.Equal(t, "#cs-alerts", msg.Channel)
}

// Payload text lands escaped and verbatim: it cannot mention a channel,
// open a link or reorder what is shown.
func TestMessageHostileTextIsInert(t *testing.T) {
	msg := build(t, Route{}, evilEvent())
	require.NoError(t, checkMessage(msg.Text, msg.Blocks.BlockSet))
	marked := msg.Text + "\n" + mrkdwnText(msg)
	for _, bad := range []string{"<!channel>", "<!here>", "<!everyone>", "<@U", "<#C", "<!subteam", "<!date",
		"<https://evil", "<b>", "@here", "@channel", "@EVERYONE", "\u202E", "\u2066", "\u2069", "\x00", "\r"} {
		assert.NotContains(t, marked, bad)
	}
	for _, want := range []string{"&lt;!channel&gt;", "&lt;!here&gt;", "&lt;https://evil.example|click&gt;",
		"&lt;https://evil.example|Acme&gt; &amp; Co", "@\u2060here", "@\u2060channel", "@\u2060EVERYONE",
		"&amp;amp; &amp;lt;", "gnp.exe", "é😀é😀"} {
		assert.Contains(t, marked, want)
	}
	// The only link is the account's, with & escaped inside.
	assert.Equal(t, []string{"<https://app.staircase.ai/accounts/1?a=b&amp;c=%3Cd%3E|&lt;https://evil.example|Acme&gt; &amp; Co @\u2060here>"},
		link.FindAllString(marked, -1))

	// The header is plain text, which Slack shows as written: no escapes
	// to show literally, but no control or format characters either, and
	// no broadcast word.
	header := msg.Blocks.BlockSet[0].(*slack.HeaderBlock).Text
	assert.Equal(t, slack.PlainTextType, header.Type)
	assert.True(t, strings.HasPrefix(header.Text, "[TEST] <!channel> @\u2060here *bold* _it_ ~s~ `code` <https://evil.example|click> gnp.exe & <@U123>"), header.Text)
}

// Only https links, and only those of at most maxLinkURL characters: a
// longer one is left out, never cut.
func TestMessageAccountLink(t *testing.T) {
	accountText := func(url string) string {
		ev := &event.Event{ID: "e", Account: event.Account{ID: "a", Name: "Acme", StaircaseURL: url}}
		return build(t, Route{}, ev).Blocks.BlockSet[1].(*slack.SectionBlock).Text.Text
	}
	base := "https://app.staircase.ai/accounts/"
	exact := base + strings.Repeat("x", slackMaxURL-len(base))
	require.Len(t, exact, 255)
	assert.Equal(t, "*Account:* <"+exact+"|Acme>", accountText(exact))
	assert.Equal(t, "*Account:* Acme", accountText(exact+"x"), "one past the limit: no link, and no cut URL")
	// The limit counts the URL as sent, & escaped.
	amp := base + "?a=b&c" + strings.Repeat("x", slackMaxURL-len(base)-6-4)
	assert.Equal(t, "*Account:* <"+strings.ReplaceAll(amp, "&", "&amp;")+"|Acme>", accountText(amp))
	assert.Equal(t, "*Account:* Acme", accountText(amp+"x"))

	for _, u := range []string{"http://app.staircase.ai/a", "javascript:alert(1)", "data:text/html,x", "/relative",
		"https://", "https://a.example/\nb",
		"https://a.example/\u202Eb", "https://a.example/ b", "\xff"} {
		assert.Equal(t, "*Account:* Acme", accountText(u), "%q", u)
	}
	// Credentials are dropped, so the host shown is the one it leads to.
	assert.Equal(t, "*Account:* <https://evil.example/|Acme>", accountText("https://app.staircase.ai:pw@evil.example/"))
	// Characters that would end the link are percent-encoded, as a
	// browser sends them.
	assert.Equal(t, "*Account:* <https://a.example/x%7Cy?q=%3Cx%3E%7C%22%60%5C|Acme>", accountText("https://a.example/x|y?q=<x>|\"`\\"))
}

// The header is cut to maxHeaderText characters, never inside a code
// point; exactly at the limit it is left whole.
func TestMessageHeaderLimit(t *testing.T) {
	header := func(title string) string {
		ev := &event.Event{ID: "e", Account: event.Account{ID: "a"}, Signal: event.Signal{Title: title}}
		return build(t, Route{}, ev).Blocks.BlockSet[0].(*slack.HeaderBlock).Text.Text
	}
	exact := strings.Repeat("h", slackMaxHeader)
	assert.Equal(t, exact, header(exact))
	cut := header(exact + "h")
	assert.Equal(t, strings.Repeat("h", slackMaxHeader-1)+"…", cut)
	assert.Equal(t, slackMaxHeader, utf16Len(cut))

	// An emoji counts two: one that would end at 151 is left out whole.
	emoji := strings.Repeat("h", slackMaxHeader-2) + "😀"
	assert.Equal(t, emoji, header(emoji), "exactly 150 with the emoji")
	cut = header("h" + emoji)
	assert.Equal(t, strings.Repeat("h", slackMaxHeader-1)+"…", cut)
	cut = header(strings.Repeat("é", slackMaxHeader+1))
	assert.Equal(t, strings.Repeat("é", slackMaxHeader-1)+"…", cut)
}

// A section's text is at most maxSectionText characters: a longer body is
// split into sections, nothing lost while the message's total allows.
func TestMessageSectionLimit(t *testing.T) {
	body := func(summary string) []string {
		ev := &event.Event{ID: "e", Account: event.Account{ID: "a"}, Signal: event.Signal{Summary: summary}}
		blocks := build(t, Route{}, ev).Blocks.BlockSet
		var out []string
		for _, b := range blocks[2 : len(blocks)-1] {
			out = append(out, b.(*slack.SectionBlock).Text.Text)
		}
		return out
	}
	exact := strings.Repeat("x", slackMaxSection)
	assert.Equal(t, []string{exact}, body(exact))
	assert.Equal(t, []string{exact, "x"}, body(exact+"x"))

	// Split at a line or a space in the second half of a section.
	words := strings.Repeat("word ", slackMaxSection/5) + "last"
	got := body(words)
	require.Len(t, got, 2)
	assert.Equal(t, strings.TrimSpace(strings.Repeat("word ", slackMaxSection/5)), got[0])
	assert.Equal(t, "last", got[1])

	// Never inside an escape: "&" is five characters once escaped.
	amps := strings.Repeat("&", slackMaxSection/5) + "&"
	got = body(amps)
	require.Len(t, got, 2)
	assert.Equal(t, strings.Repeat("&amp;", slackMaxSection/5), got[0])
	assert.Equal(t, "&amp;", got[1])

	// Never inside a code point: an emoji is two characters.
	emoji := "x" + strings.Repeat("😀", slackMaxSection/2)
	got = body(emoji)
	require.Len(t, got, 2)
	assert.Equal(t, slackMaxSection-1, utf16Len(got[0]))
	assert.Equal(t, "😀", got[1])
}

// peopleEvent has n people with short names.
func peopleEvent(n int) *event.Event {
	ev := &event.Event{ID: "e", Account: event.Account{ID: "a"}, Signal: event.Signal{Summary: "s"}}
	for i := range n {
		ev.People = append(ev.People, event.Person{Name: "P" + strings.Repeat("x", i%7)})
	}
	return ev
}

// A message has at most maxBlocks blocks: people past them are left out
// and counted in a note.
func TestMessageBlockLimit(t *testing.T) {
	// Header, account, summary and context leave 46 blocks for people.
	msg := build(t, Route{}, peopleEvent(slackMaxBlocks-4))
	require.Len(t, msg.Blocks.BlockSet, slackMaxBlocks)
	assert.NotContains(t, allText(msg), "not shown")

	msg = build(t, Route{}, peopleEvent(slackMaxBlocks-3))
	require.Len(t, msg.Blocks.BlockSet, slackMaxBlocks)
	assert.Contains(t, allText(msg), "2 more people are not shown.", "one person for the note's block, one past")
	require.NoError(t, checkMessage(msg.Text, msg.Blocks.BlockSet))

	msg = build(t, Route{}, peopleEvent(200))
	require.Len(t, msg.Blocks.BlockSet, slackMaxBlocks)
	assert.Contains(t, allText(msg), "155 more people are not shown.", "45 shown beside the note")
}

// At most maxMessageText characters in all blocks: past it people go
// first, then the body is cut.
func TestMessageTotalLimit(t *testing.T) {
	total := func(msg *slack.WebhookMessage) int {
		n := 0
		for _, b := range msg.Blocks.BlockSet {
			n += blocksText([]slack.Block{b})
		}
		return n
	}
	ev := &event.Event{ID: "e", Account: event.Account{ID: "a"}}
	base := total(build(t, Route{}, ev))
	ev.Signal.Summary = strings.Repeat("x", slackMaxTotal-base)
	msg := build(t, Route{}, ev)
	assert.Equal(t, slackMaxTotal, total(msg))
	assert.Equal(t, slackMaxTotal-base, strings.Count(allText(msg), "x"), "exactly at the limit: nothing cut")
	assert.NotContains(t, allText(msg), "shortened")

	ev.Signal.Summary += "x"
	msg = build(t, Route{}, ev)
	assert.LessOrEqual(t, total(msg), slackMaxTotal)
	assert.Contains(t, allText(msg), "The text was shortened to fit a Slack message.")
	assert.Contains(t, allText(msg), "x…")
	require.NoError(t, checkMessage(msg.Text, msg.Blocks.BlockSet))

	// People go before the body is touched.
	ev.Signal.Summary = strings.Repeat("x", slackMaxTotal-base-100)
	ev.People = []event.Person{{Name: strings.Repeat("p", 200)}}
	msg = build(t, Route{}, ev)
	assert.Equal(t, slackMaxTotal-base-100, strings.Count(allText(msg), "x"), "the body whole")
	assert.NotContains(t, allText(msg), strings.Repeat("p", 200))
	assert.Contains(t, allText(msg), "1 more person is not shown.")
	assert.LessOrEqual(t, total(msg), slackMaxTotal)
}

// Each value is bounded well within Slack's limits, so the fixed part of
// a message stays small: exactly at a bound a value is whole, one past it
// is cut with an ellipsis.
func TestMessageValueBounds(t *testing.T) {
	cases := []struct {
		name  string
		max   int
		set   func(ev *event.Event, s string)
		found func(msg *slack.WebhookMessage) string
	}{
		{"account name", maxNameText, func(ev *event.Event, s string) { ev.Account.Name = s },
			func(m *slack.WebhookMessage) string {
				return strings.TrimPrefix(m.Blocks.BlockSet[1].(*slack.SectionBlock).Text.Text, "*Account:* ")
			}},
		{"fact", maxFactText, func(ev *event.Event, s string) { ev.Signal.Sentiment = s },
			func(m *slack.WebhookMessage) string {
				return strings.TrimPrefix(m.Blocks.BlockSet[1].(*slack.SectionBlock).Fields[0].Text, "*Sentiment*\n")
			}},
		{"person", maxPersonText / 2, func(ev *event.Event, s string) { ev.People = []event.Person{{Name: s}} },
			func(m *slack.WebhookMessage) string {
				return strings.TrimSuffix(strings.TrimPrefix(m.Blocks.BlockSet[2].(*slack.SectionBlock).Text.Text, "*People*\n• *"), "*")
			}},
		{"event id", maxEventIDText, func(ev *event.Event, s string) { ev.ID = s },
			func(m *slack.WebhookMessage) string {
				els := m.Blocks.BlockSet[len(m.Blocks.BlockSet)-1].(*slack.ContextBlock).ContextElements.Elements
				return strings.TrimPrefix(els[0].(*slack.TextBlockObject).Text, "Staircase event ")
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := &event.Event{ID: "e", Account: event.Account{ID: "a"}}
			tc.set(ev, strings.Repeat("v", tc.max))
			assert.Equal(t, strings.Repeat("v", tc.max), tc.found(build(t, Route{}, ev)))
			tc.set(ev, strings.Repeat("v", tc.max+1))
			assert.Equal(t, strings.Repeat("v", tc.max-1)+"…", tc.found(build(t, Route{}, ev)))
			// Escapes count as sent and are never split.
			tc.set(ev, strings.Repeat("<", tc.max))
			got := tc.found(build(t, Route{}, ev))
			assert.LessOrEqual(t, utf16Len(got), tc.max)
			assert.True(t, strings.HasSuffix(got, "&lt;…"), got)
		})
	}
	ev := &event.Event{ID: "e", Account: event.Account{ID: "a", Name: strings.Repeat("n", 400)}}
	assert.Equal(t, maxFallbackText, utf16Len(build(t, Route{}, ev).Text))
}

// A route's templates: the title is plain text made one line with the
// test marker once; the text is mrkdwn written by the template around
// payload strings that arrive escaped.
func TestMessageTemplates(t *testing.T) {
	route := Route{
		Title: "[TEST] {{.Account.Name}}\n{{.Signal.Title}}",
		Text:  "*Owner:* {{.Fields.extra.owner}} · {{.Account.Name}} · <https://docs.example/runbook|runbook> · {{printf \"%s\" .Raw}}",
	}
	ev := evilEvent()
	ev.Raw = []byte(`{"x":"<!channel>"}`)
	ev.Fields = map[string]any{"extra": map[string]any{"owner": "<!here> & <@U1>", "<k>": []any{"<v>"}}}
	msg := build(t, route, ev)
	header := msg.Blocks.BlockSet[0].(*slack.HeaderBlock).Text.Text
	assert.True(t, strings.HasPrefix(header, "[TEST] <https://evil.example|Acme> & Co @\u2060here <!channel>"), header)
	assert.Equal(t, 1, strings.Count(header, "[TEST]"))
	body := msg.Blocks.BlockSet[3].(*slack.SectionBlock).Text.Text
	assert.Equal(t, "*Owner:* &lt;!here&gt; &amp; &lt;@U1&gt; · &lt;https://evil.example|Acme&gt; &amp; Co @\u2060here · "+
		"<https://docs.example/runbook|runbook> · {\"x\":\"&lt;!channel&gt;\"}", body)
	// The event itself is unchanged: other sinks share it.
	assert.Equal(t, "<!here> & <@U1>", ev.Fields["extra"].(map[string]any)["owner"])
	assert.Equal(t, `{"x":"<!channel>"}`, string(ev.Raw))
	assert.Equal(t, "<https://evil.example|Acme> & Co @here", ev.Account.Name)

	// A template that renders nothing leaves the default header and no body.
	msg = build(t, Route{Title: "{{if false}}x{{end}}", Text: " "}, &event.Event{ID: "e", Type: "renewal", Account: event.Account{ID: "a"}})
	assert.Equal(t, "Staircase signal renewal", msg.Blocks.BlockSet[0].(*slack.HeaderBlock).Text.Text)
	assert.Len(t, msg.Blocks.BlockSet, 3)
}

func TestMessageTemplateErrorsArePermanent(t *testing.T) {
	b, err := NewMessageBuilder(Route{Text: "{{index .People 5}}"})
	require.NoError(t, err)
	_, err = b.Build(sinktest.HostileEvent())
	require.ErrorIs(t, err, sink.ErrPermanent)
	assert.Equal(t, "template", sink.ReasonClass(err))

	b, err = NewMessageBuilder(Route{Text: "{{.Signal.Summary}}"})
	require.NoError(t, err)
	ev := &event.Event{ID: "e", Signal: event.Signal{Summary: strings.Repeat("x", render.MaxOutput+1)}}
	_, err = b.Build(ev)
	require.ErrorIs(t, err, render.ErrOutputTooLarge)
	require.ErrorIs(t, err, sink.ErrPermanent)
}

func TestDetectedAtShownOrLeftOut(t *testing.T) {
	ev := &event.Event{ID: "e", Account: event.Account{ID: "a"}}
	ev.Fields = map[string]any{"signal": map[string]any{"detected_at": "0001-01-01T00:00:00Z"}}
	assert.NotContains(t, allText(build(t, Route{}, ev)), "Detected")
	ev.Fields = map[string]any{"signal": map[string]any{"detected_at": json.Number("1764151200")}}
	assert.Contains(t, allText(build(t, Route{}, ev)), "*Detected at*\n1764151200")
	ev.Signal.DetectedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	assert.Contains(t, allText(build(t, Route{}, ev)), "*Detected at*\n2026-01-02 02:04 UTC")
}

func TestClipMrkdwn(t *testing.T) {
	assert.Equal(t, "&amp;…", clipMrkdwn("&amp;&amp;", 9), "no half escape")
	assert.Equal(t, "…", clipMrkdwn("&amp;&amp;", 5))
	assert.Equal(t, []string{"&lt;", "&lt;"}, chunkMrkdwn("&lt;&lt;", 6))
}
