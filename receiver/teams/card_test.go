package teams

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/chat"
	"github.com/stairhook/stairhook/receiver/internal/sinktest"
)

// evilEvent is sinktest.HostileEvent with markdown, Slack and Teams
// markup, mentions, bidi overrides, and long multi-byte text in every
// field.
func evilEvent() *event.Event {
	ev := sinktest.HostileEvent()
	ev.Signal.Title = "**bold** [click](https://evil.example) <at>Everyone</at> <!channel> @here \u202Egnp.exe"
	ev.Signal.Summary = "# Heading\n- item\n1. one\n[link](https://evil.example) ![img](https://evil.example/x.png) <a href=x>a</a>\n" +
		"<at>General</at> &amp; \u2066x\u2069 \u200f\n\n" + strings.Repeat("é😀", 4000)
	ev.Account.Name = "[Acme](https://evil.example) _Co_"
	ev.People = append(ev.People,
		event.Person{Name: "<at>Everyone</at>", Title: strings.Repeat("ü", 3000)},
		event.Person{Name: "\u202Eevil", PreviousTitle: "[x](javascript:alert(1))"},
	)
	return ev
}

// testEvents are the events the card tests render: those of
// sinktest.ChatEvents.
func testEvents(t testing.TB) map[string]*event.Event {
	t.Helper()
	return sinktest.ChatEvents(t, evilEvent)
}

func build(t testing.TB, ev *event.Event) []byte {
	t.Helper()
	b, err := NewMessageBuilder(Route{})
	require.NoError(t, err)
	data, err := b.Build(ev)
	require.NoError(t, err)
	return data
}

// decoded is a message's card as generic JSON, for the content tests.
type decoded struct {
	Type        string
	Attachments []struct {
		ContentType string
		Content     struct {
			Schema       string `json:"$schema"`
			Type         string
			Version      string
			FallbackText string
			Body         []struct {
				Type      string
				Separator bool
				Inlines   []run
			}
			Actions []action
		}
	}
}

func decode(t testing.TB, data []byte) decoded {
	t.Helper()
	var d decoded
	require.NoError(t, json.Unmarshal(data, &d))
	require.Len(t, d.Attachments, 1)
	return d
}

// lines is the text of each element of the card's body.
func lines(d decoded) []string {
	var out []string
	for _, e := range d.Attachments[0].Content.Body {
		var b strings.Builder
		for _, r := range e.Inlines {
			b.WriteString(r.Text)
		}
		out = append(out, b.String())
	}
	return out
}

func TestCardWithinLimitsAndInert(t *testing.T) {
	for name, ev := range testEvents(t) {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, checkMessage(build(t, ev)))
		})
	}
}

// Every test card passes Microsoft's own parser, all in one run of
// validate.js.
func TestCardsPassTheParser(t *testing.T) {
	v := loadValidator(t)
	events := testEvents(t)
	names := slices.Sorted(maps.Keys(events))
	msgs := make([][]byte, len(names))
	for i, name := range names {
		msgs[i] = build(t, events[name])
	}
	results, err := v.validate(msgs...)
	require.NoError(t, err)
	for i, name := range names {
		assert.NoError(t, results[i], "%s: %s", name, msgs[i])
	}
}

// The validator really rejects what a client would refuse, or would show
// otherwise than we meant, each for its own reason; and it accepts what
// the parser only rewrites. The parser lets a TextRun without text, a
// RichTextBlock without inlines and a javascript: URL through: those are
// checkMessage's to refuse.
func TestCardValidatorRejects(t *testing.T) {
	v := loadValidator(t)
	wrap := func(card string) string {
		return `{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":` + card + `}]}`
	}
	card := func(rest string) string {
		return `{"$schema":"http://adaptivecards.io/schemas/adaptive-card.json","type":"AdaptiveCard","version":"1.5",` + rest + `}`
	}
	runs := func(runs string) string {
		return card(`"body":[{"type":"RichTextBlock","inlines":[` + runs + `]}]`)
	}
	valid := runs(`{"type":"TextRun","text":"x"}`)
	cases := []struct {
		name, input  string
		phase, event string // of a problem the report must hold; none for a valid input
	}{
		// Events of the parser.
		{"unknown element type", card(`"body":[{"type":"Blink","text":"x"}]`), "Parse", "UnknownElementType"},
		{"unknown action type", card(`"body":[{"type":"RichTextBlock","inlines":[{"type":"TextRun","text":"x"}]}],"actions":[{"type":"Action.Blink","url":"https://a.example/"}]`), "Parse", "UnknownActionType"},
		{"invalid enum value", runs(`{"type":"TextRun","text":"x","weight":"heavy"}`), "Parse", "InvalidPropertyValue"},
		{"property newer than 1.5", card(`"body":[{"type":"Image","url":"https://a.example/i.png","forceLoad":true}]`), "Parse", "UnsupportedProperty"},
		{"open url without url", card(`"body":[{"type":"RichTextBlock","inlines":[{"type":"TextRun","text":"x"}]}],"actions":[{"type":"Action.OpenUrl","title":"x"}]`), "Validation", "PropertyCantBeNull"},

		// What toJSON drops without a word.
		{"unknown property", runs(`{"type":"TextRun","text":"x","blink":true}`), "ToJSON", "Dropped"},
		{"unknown card property", card(`"body":[{"type":"RichTextBlock","inlines":[{"type":"TextRun","text":"x"}]}],"msteams":{"width":"Full"}`), "ToJSON", "Dropped"},
		{"unknown property set to false", runs(`{"type":"TextRun","text":"x","blink":false}`), "ToJSON", "Dropped"},
		{"bool as a string", runs(`{"type":"TextRun","text":"x","isSubtle":"true"}`), "ToJSON", "Dropped"},
		{"bool as a string read as the default", runs(`{"type":"TextRun","text":"x","isSubtle":"no"}`), "ToJSON", "Dropped"},
		{"number for text", runs(`{"type":"TextRun","text":5}`), "ToJSON", "Dropped"},
		{"empty text", runs(`{"type":"TextRun","text":""}`), "ToJSON", "Dropped"},
		{"empty list", card(`"body":[{"type":"RichTextBlock","inlines":[]}]`), "ToJSON", "Dropped"},

		// The envelope, and the card's own type, version and $schema.
		{"not a message", strings.Replace(wrap(valid), `"message"`, `"Message"`, 1), "Envelope", "InvalidEnvelope"},
		{"two attachments", `{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":` + valid + `},{"contentType":"application/vnd.microsoft.card.adaptive","content":` + valid + `}]}`, "Envelope", "InvalidEnvelope"},
		{"wrong content type", strings.Replace(wrap(valid), "vnd.microsoft.card.adaptive", "vnd.microsoft.card.hero", 1), "Envelope", "InvalidEnvelope"},
		{"unknown envelope property", strings.Replace(wrap(valid), `"type":"message",`, `"type":"message","summary":"x",`, 1), "Envelope", "InvalidEnvelope"},
		{"card by URL", strings.Replace(wrap(valid), `"contentType"`, `"contentUrl":"https://a.example/c.json","contentType"`, 1), "Envelope", "InvalidEnvelope"},
		{"not a card", strings.Replace(valid, `"AdaptiveCard"`, `"Message"`, 1), "Envelope", "InvalidEnvelope"},
		{"version 1.6", strings.Replace(valid, `"1.5"`, `"1.6"`, 1), "Envelope", "InvalidEnvelope"},
		{"no $schema", strings.Replace(valid, `"$schema":"http://adaptivecards.io/schemas/adaptive-card.json",`, ``, 1), "Envelope", "InvalidEnvelope"},
		{"not JSON", wrap(valid)[1:], "Envelope", "InvalidJSON"},

		// Valid: what the parser only rewrites.
		{"valid message", wrap(valid), "", ""},
		{"valid card alone", valid, "", ""},
		{"enum values in any case", runs(`{"type":"TextRun","text":"x","weight":"BOLDER","size":"Large","color":"attention"}`), "", ""},
		{"defaults spelled out", card(`"body":[{"type":"RichTextBlock","separator":false,"inlines":[{"type":"TextRun","text":"x","isSubtle":false,"weight":"default"}]}]`), "", ""},
		{"content url null", strings.Replace(wrap(valid), `"contentType"`, `"contentUrl":null,"contentType"`, 1), "", ""},
	}
	inputs := make([][]byte, len(cases))
	for i, tc := range cases {
		inputs[i] = []byte(tc.input)
	}
	results, err := v.validate(inputs...)
	require.NoError(t, err)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.event == "" {
				assert.NoError(t, results[i], "%s", tc.input)
				return
			}
			var invalid *invalidCardError
			require.ErrorAs(t, results[i], &invalid, "%s", tc.input)
			assert.True(t, invalid.has(tc.phase, tc.event), "want a %s %s problem: %v", tc.phase, tc.event, invalid)
		})
	}
}

func TestCardContent(t *testing.T) {
	data, err := event.Sample(event.TypeChurnRisk)
	require.NoError(t, err)
	ev, err := event.Decode(data)
	require.NoError(t, err)
	d := decode(t, build(t, ev))
	assert.Equal(t, "message", d.Type)
	assert.Equal(t, "application/vnd.microsoft.card.adaptive", d.Attachments[0].ContentType)
	c := d.Attachments[0].Content
	assert.Equal(t, "AdaptiveCard", c.Type)
	assert.Equal(t, "1.5", c.Version)
	assert.Equal(t, "http://adaptivecards.io/schemas/adaptive-card.json", c.Schema)
	assert.Equal(t, "Churn risk detected (high) (Acme Corp)", c.FallbackText)
	assert.Equal(t, []string{
		"Churn risk detected (high)",
		"Account: Acme Corp (acme.com)",
		"Severity: high", "Type: churn_risk", "Sentiment: negative", "Category: risk", "Account status: active",
		"Detected at: 2026-11-26 09:05 UTC",
		ev.Signal.Summary,
		"People",
		"• Luis Ortega, Director of Support, champion",
		"• Dana Whitfield, VP Customer Operations, decision_maker",
		"Staircase event evt_01JD3QX8M2A1B4C6D8E0F2G4H6",
	}, lines(d))
	url := "https://app.staircase.ai/accounts/acc_01J9Z3K7QK2V8M4N6P0R2T4V6X"
	assert.Equal(t, &action{Type: "Action.OpenUrl", URL: url}, c.Body[1].Inlines[1].SelectAction)
	assert.Equal(t, []action{{Type: "Action.OpenUrl", Title: "Open in Staircase", URL: url}}, c.Actions)

	ev.Test = true
	got := lines(decode(t, build(t, ev)))
	assert.Equal(t, "[TEST] This is a test notification from Staircase.", got[0])
	assert.Equal(t, "[TEST] Churn risk detected (high)", got[1])
}

// Payload text is only ever in TextRuns, which Teams shows as written:
// markdown, HTML and <at> mentions stay text; control characters and bidi
// overrides are gone; links are https Staircase links only. The parser
// takes every one of these cards.
func TestCardHostileTextIsInert(t *testing.T) {
	data := build(t, evilEvent())
	require.NoError(t, checkMessage(data))
	msgs := [][]byte{data}
	d := decode(t, data)
	all := strings.Join(lines(d), "\n")
	assert.Contains(t, all, "**bold** [click](https://evil.example) <at>Everyone</at> <!channel> @here gnp.exe")
	assert.Contains(t, all, "Account: [Acme](https://evil.example) _Co_")
	for _, bad := range []string{"\u202E", "\u2066", "\u2069", "\x00", "\r"} {
		assert.NotContains(t, all, bad)
	}
	assert.Contains(t, all, "\u200f", "right-to-left marks stay in the summary")
	assert.NotContains(t, string(data), `"type":"TextBlock"`, "no markdown element at all")
	var urls []string
	for _, e := range d.Attachments[0].Content.Body {
		for _, r := range e.Inlines {
			if r.SelectAction != nil {
				urls = append(urls, r.SelectAction.URL)
			}
		}
	}
	assert.Equal(t, []string{"https://app.staircase.ai/accounts/1?a=b&c=%3Cd%3E"}, urls)

	for _, u := range []string{"http://app.staircase.ai/a", "javascript:alert(1)", "data:text/html,x", "/relative", "https://a.example/ b",
		"https://" + strings.Repeat("a", maxLinkURL)} {
		ev := evilEvent()
		ev.Account.StaircaseURL = u
		data := build(t, ev)
		assert.NotContains(t, string(data), "Action.OpenUrl", u)
		msgs = append(msgs, data)
	}
	optionalValidator(t).requireValid(t, msgs...)
}

// sizeOf is the length of the message for ev.
func sizeOf(t *testing.T, ev *event.Event) int { return len(build(t, ev)) }

// A message is at most maxMessageBytes: exactly at the limit nothing is
// cut; one byte past it the summary is cut (without people) and a note
// says so. The parser takes each card.
func TestCardSizeLimitCutsTheSummary(t *testing.T) {
	var msgs [][]byte
	ev := &event.Event{ID: "e", Account: event.Account{ID: "a"}, Signal: event.Signal{Summary: "~"}}
	one := sizeOf(t, ev)
	ev.Signal.Summary = strings.Repeat("~", maxMessageBytes-one+1)
	data := build(t, ev)
	require.Len(t, data, teamsMaxBytes, "exactly at the limit")
	assert.Equal(t, maxMessageBytes-one+1, strings.Count(string(data), "~"), "nothing cut")
	assert.NotContains(t, string(data), "shortened")
	msgs = append(msgs, data)

	ev.Signal.Summary += "~"
	data = build(t, ev)
	assert.LessOrEqual(t, len(data), teamsMaxBytes)
	assert.Contains(t, string(data), "~…")
	assert.Contains(t, string(data), "The summary was shortened to fit a Teams message.")
	require.NoError(t, checkMessage(data))
	msgs = append(msgs, data)

	// Multi-byte text is cut between code points.
	ev.Signal.Summary = strings.Repeat("😀", maxMessageBytes/4)
	data = build(t, ev)
	assert.LessOrEqual(t, len(data), teamsMaxBytes)
	require.NoError(t, checkMessage(data))
	assert.Contains(t, string(data), "😀…")
	msgs = append(msgs, data)
	optionalValidator(t).requireValid(t, msgs...)
}

// People go first: exactly at the limit everyone is shown; one byte past
// it the last person gives way to a note, and the summary stays whole.
// The parser takes each card.
func TestCardSizeLimitLeavesPeopleOut(t *testing.T) {
	var msgs [][]byte
	ev := &event.Event{ID: "e", Account: event.Account{ID: "a"}, Signal: event.Signal{Summary: strings.Repeat("s", 1000)}}
	for len(build(t, ev)) < maxMessageBytes-250 {
		ev.People = append(ev.People, event.Person{Name: strings.Repeat("p", 200)})
	}
	last := &ev.People[len(ev.People)-1]
	last.Name = "x"
	last.Name = strings.Repeat("x", maxMessageBytes-sizeOf(t, ev)+1)
	data := build(t, ev)
	require.Equal(t, teamsMaxBytes, len(data), "exactly at the limit")
	assert.NotContains(t, string(data), "not shown")
	msgs = append(msgs, data)

	last.Name += "x"
	data = build(t, ev)
	assert.LessOrEqual(t, len(data), teamsMaxBytes)
	assert.Contains(t, string(data), "1 more person is not shown.")
	assert.NotContains(t, string(data), last.Name)
	assert.Contains(t, string(data), strings.Repeat("s", 1000), "the summary whole")
	require.NoError(t, checkMessage(data))
	msgs = append(msgs, data)

	// Past chat.MaxPeople, people are counted without being looked at.
	ev.People = make([]event.Person, chat.MaxPeople+7)
	for i := range ev.People {
		ev.People[i].Name = "P"
	}
	data = build(t, ev)
	assert.Contains(t, string(data), "7 more people are not shown.")
	msgs = append(msgs, data)
	optionalValidator(t).requireValid(t, msgs...)
}

// Each value is bounded, so the fixed part of a card stays small.
func TestCardValueBounds(t *testing.T) {
	cases := []struct {
		name string
		max  int
		set  func(ev *event.Event, s string)
		line int // the body element that shows it
		pre  string
	}{
		{"title", maxTitleText, func(ev *event.Event, s string) { ev.Signal.Title = s }, 0, ""},
		{"account name", maxNameText, func(ev *event.Event, s string) { ev.Account.Name = s }, 1, "Account: "},
		{"fact", maxFactText, func(ev *event.Event, s string) { ev.Signal.Category = s }, 2, "Category: "},
		{"person", maxPersonText, func(ev *event.Event, s string) { ev.People = []event.Person{{Name: s}} }, 2, "• "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := &event.Event{ID: "e", Account: event.Account{ID: "a"}}
			tc.set(ev, strings.Repeat("v", tc.max))
			offset := 0
			if tc.name == "person" {
				offset = 1 // the People heading
			}
			assert.Equal(t, tc.pre+strings.Repeat("v", tc.max), lines(decode(t, build(t, ev)))[tc.line+offset])
			tc.set(ev, strings.Repeat("v", tc.max+1))
			assert.Equal(t, tc.pre+strings.Repeat("v", tc.max-1)+"…", lines(decode(t, build(t, ev)))[tc.line+offset])
		})
	}
	ev := &event.Event{ID: strings.Repeat("i", maxEventIDText+1), Account: event.Account{ID: "a"}}
	got := lines(decode(t, build(t, ev)))
	assert.Equal(t, "Staircase event "+strings.Repeat("i", maxEventIDText-1)+"…", got[len(got)-1])
}

func TestNewMessageBuilderChecksTheRoute(t *testing.T) {
	_, err := NewMessageBuilder(Route{WebhookURL: "http://example.com/x?sig=SECRET"})
	require.ErrorContains(t, err, "webhook_url: must be https")
	assert.NotContains(t, err.Error(), "SECRET")
}
