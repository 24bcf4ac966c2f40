package jira

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/sinktest"
	"github.com/stairhook/stairhook/receiver/jiratest"
)

// minimalEvent is the smallest body event.Decode accepts.
const minimalEvent = `{"id":"evt_1","type":"churn_risk","account":{"id":"acc_1"}}`

// sinkTestEvents are the events the sink tests render: every sample payload
// of package event, plus hostile and sparse ones built here.
func sinkTestEvents(t *testing.T) map[string]*event.Event {
	t.Helper()
	events := map[string]*event.Event{}
	for _, typ := range event.SampleTypes() {
		data, err := event.Sample(typ)
		require.NoError(t, err)
		ev, err := event.Decode(data)
		require.NoError(t, err, typ)
		events["sample/"+typ] = ev
	}
	for name, dates := range map[string]string{
		"bad-dates":   `"created_at":"26/11/2026","signal":{"title":"T","detected_at":"yesterday\n\u0000<b>"}`,
		"empty-dates": `"created_at":"","signal":{"title":"T","detected_at":""}`,
		"zero-dates":  `"created_at":"0001-01-01T00:00:00Z","signal":{"title":"T","detected_at":"0001-01-01T00:00:00Z"}`,
	} {
		ev, err := event.Decode([]byte(strings.TrimSuffix(minimalEvent, "}") + "," + dates + "}"))
		require.NoError(t, err, name)
		events[name] = ev
	}
	for _, typ := range event.KnownTypes() {
		ev := sinktest.HostileEvent()
		ev.Type = typ
		events["hostile/"+typ] = ev
	}
	events["sparse"] = &event.Event{ID: "evt_sparse", Type: "something_new", Account: event.Account{ID: "acc_1"}}
	events["blank-strings"] = &event.Event{
		ID: "evt_blank", Type: event.TypeRenewal, Test: true,
		Account: event.Account{ID: "acc_2", Name: "  ", StaircaseURL: "javascript:alert(1)"},
		Signal:  event.Signal{Title: "\n\n", Summary: "\r\n \r\n", Severity: ""},
		People:  []event.Person{{}, {Name: "\n"}, {Title: "CFO"}},
	}
	return events
}

func descriptionJSON(t *testing.T, ev *event.Event) []byte {
	t.Helper()
	doc, err := json.Marshal(buildDescription(ev))
	require.NoError(t, err)
	return doc
}

func TestDescriptionStructure(t *testing.T) {
	for name, ev := range sinkTestEvents(t) {
		t.Run(name, func(t *testing.T) {
			doc := descriptionJSON(t, ev)
			require.NoError(t, jiratest.CheckADF(doc), "%s", doc)
		})
	}
}

func TestDescriptionContent(t *testing.T) {
	doc := string(descriptionJSON(t, sinktest.HostileEvent()))
	// The link survives; the account name is one line, the summary keeps
	// its line breaks.
	assert.Contains(t, doc, `"href":"https://app.staircase.ai/accounts/1?a=b\u0026c=\u003cd\u003e"`)
	assert.Contains(t, doc, `"text":"Acme \u003cscript\u003ealert(1)\u003c/script\u003e Bcc: victim@example.com"`)
	assert.Contains(t, doc, `{"type":"hardBreak"}`)
	assert.NotContains(t, doc, `\u0000`)
	assert.NotContains(t, doc, `\n`)
	assert.Contains(t, doc, `"text":"[TEST] This is a test notification from Staircase."`)
	assert.Contains(t, doc, `"type":"bulletList"`)
	assert.Contains(t, doc, `"text":"Bo 😀 Chen"`)
	assert.Contains(t, doc, `"text":", CTO, title_changed, previously VP Eng"`)

	// Only http(s) URLs become links.
	for _, u := range []string{"javascript:alert(1)", "data:text/html,x", "/relative", "https://", "https://a.example/\nb", "https://a.example/\u202Eb"} {
		ev := sinktest.HostileEvent()
		ev.Account.StaircaseURL = u
		assert.NotContains(t, string(descriptionJSON(t, ev)), `"link"`, u)
	}
	// A link never shows the user name and password a URL can carry, nor
	// lets one pass for the host.
	for u, want := range map[string]string{
		"https://bot:S3cr3t@app.staircase.ai/a/1": "https://app.staircase.ai/a/1",
		"https://app.staircase.ai@evil.example/x": "https://evil.example/x",
	} {
		ev := sinktest.HostileEvent()
		ev.Account.StaircaseURL = u
		doc := string(descriptionJSON(t, ev))
		assert.Contains(t, doc, `"href":"`+want+`"`, u)
		assert.NotContains(t, doc, "S3cr3t", u)
		assert.NotContains(t, doc, "staircase.ai@", u)
	}
}

// The title, the account, the labelled values and the people are one-line
// fields: no format character (bidi controls and the like) and no NUL
// reach them, nor NUL the summary.
func TestDescriptionStripsFormatCharacters(t *testing.T) {
	doc := string(descriptionJSON(t, sinktest.HostileEvent()))
	var decoded any
	require.NoError(t, json.Unmarshal([]byte(doc), &decoded))
	var texts []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if s, ok := v["text"].(string); ok {
				texts = append(texts, s)
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(decoded)
	require.NotEmpty(t, texts, doc)
	for _, s := range texts {
		for _, r := range sinktest.FormatCharacters {
			assert.NotContains(t, s, string(r), "U+%04X in %q", r, s)
		}
	}
	assert.Contains(t, texts, "Churn X-Injected: yes")
	assert.Contains(t, texts, "Ann <b>Lee</b> Subject: hijack")
}

// A date that did not parse is shown as received, on one line; an empty or
// zero one leaves the line out. The zero time is never printed.
func TestDescriptionDates(t *testing.T) {
	events := sinkTestEvents(t)
	doc := string(descriptionJSON(t, events["bad-dates"]))
	assert.Contains(t, doc, `"text":"yesterday \u003cb\u003e"`)
	for _, name := range []string{"empty-dates", "zero-dates", "sparse"} {
		doc := string(descriptionJSON(t, events[name]))
		assert.NotContains(t, doc, "Detected at", name)
		assert.NotContains(t, doc, "0001", name)
	}
	doc = string(descriptionJSON(t, sinktest.HostileEvent()))
	assert.Contains(t, doc, `"text":"2026-11-26 09:00 UTC"`)
	ev := sinktest.HostileEvent()
	ev.Signal.DetectedAt = time.Time{}
	ev.Fields = map[string]any{"signal": map[string]any{"detected_at": json.Number("1764151200")}}
	assert.Contains(t, string(descriptionJSON(t, ev)), `"text":"1764151200"`, "a number is shown as sent")
	ev.Fields = map[string]any{"signal": map[string]any{"detected_at": strings.Repeat("9", 500)}}
	assert.Contains(t, string(descriptionJSON(t, ev)), `"text":"`+strings.Repeat("9", maxRawDate)+`…"`, "clipped")
}

// adfSchema loads the real ADF JSON Schema, skipping (failing under
// STAIRHOOK_E2E) when the file is absent.
func adfSchema(t *testing.T) *jiratest.Schema {
	t.Helper()
	path := os.Getenv(jiratest.SchemaEnv)
	if path == "" {
		testenv.Missing(t, "the ADF JSON Schema ($"+jiratest.SchemaEnv+")",
			"npm pack @atlaskit/adf-schema@57.7.22 && tar xzf atlaskit-adf-schema-57.7.22.tgz; export "+jiratest.SchemaEnv+"=$PWD/package/json-schema/v1/full.json")
	}
	if _, err := os.Stat(path); err != nil {
		testenv.Missing(t, "the ADF JSON Schema at "+path, "npm pack @atlaskit/adf-schema@57.7.22")
	}
	sch, err := jiratest.LoadSchema(path)
	require.NoError(t, err)
	return sch
}

func TestDescriptionMatchesADFSchema(t *testing.T) {
	sch := adfSchema(t)
	for name, ev := range sinkTestEvents(t) {
		t.Run(name, func(t *testing.T) {
			doc := descriptionJSON(t, ev)
			require.NoError(t, sch.Validate(doc), "%s", doc)
		})
	}
}

// The schema is really enforced: documents Jira would reject fail it.
func TestADFSchemaRejects(t *testing.T) {
	sch := adfSchema(t)
	cases := map[string]string{
		"empty text node":      `{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":""}]}]}`,
		"empty bullet list":    `{"type":"doc","version":1,"content":[{"type":"bulletList","content":[]}]}`,
		"unknown mark":         `{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"x","marks":[{"type":"blink"}]}]}]}`,
		"link without href":    `{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"x","marks":[{"type":"link","attrs":{}}]}]}]}`,
		"wrong version":        `{"type":"doc","version":2,"content":[]}`,
		"text at the top":      `{"type":"doc","version":1,"content":[{"type":"text","text":"x"}]}`,
		"heading out of range": `{"type":"doc","version":1,"content":[{"type":"heading","attrs":{"level":7},"content":[{"type":"text","text":"x"}]}]}`,
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			assert.ErrorIs(t, sch.Validate([]byte(doc)), jiratest.ErrInvalidADF)
		})
	}
	// And a minimal valid one passes, so the rejections above are not
	// a schema that rejects everything.
	require.NoError(t, sch.Validate([]byte(`{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"x"}]}]}`)))
}

func TestADFTextNeverEmpty(t *testing.T) {
	for _, s := range []string{"", "\n", "\r\n\r\n", " \n \n ", "\x00\x01"} {
		assert.Empty(t, adfText(s), "%q", s)
	}
	nodes := adfText("a\r\nb\rc\nd")
	require.Len(t, nodes, 7)
	for _, n := range nodes {
		assert.False(t, strings.ContainsAny(n.Text, "\r\n"))
	}
}

func BenchmarkADFSchemaValidate(b *testing.B) {
	path := os.Getenv(jiratest.SchemaEnv)
	if path == "" {
		b.Skip("no ADF schema")
	}
	sch, err := jiratest.LoadSchema(path)
	require.NoError(b, err)
	doc, err := json.Marshal(buildDescription(sinktest.HostileEvent()))
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if err := sch.Validate(doc); err != nil {
			b.Fatal(err)
		}
	}
}
