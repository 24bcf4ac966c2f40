package render

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/sink"
)

func TestOneLine(t *testing.T) {
	cases := map[string]string{
		"plain":                     "plain",
		"a\r\nb":                    "a b",
		"a\rb\nc":                   "a b c",
		"  lead and trail \n":       "lead and trail",
		"tab\tand\x00nul\x1b[31m":   "tab and nul [31m",
		"ls\u2028ps\u2029nel\u0085": "ls ps nel",
		"bad \xff utf8":             "bad \uFFFD utf8",
		"\r\n\r\n":                  "",
	}
	for in, want := range cases {
		assert.Equal(t, want, OneLine(in), "%q", in)
	}
}

func TestTestMarker(t *testing.T) {
	ev := &event.Event{Test: true}
	assert.Equal(t, "[TEST] x", WithTestMarker(ev, "x"))
	assert.Equal(t, "[TEST] x", WithTestMarker(ev, "[TEST] x"), "not doubled")
	assert.Equal(t, "x", WithTestMarker(&event.Event{}, "x"))
}

func TestTemplateErrorsArePermanent(t *testing.T) {
	tmpl, err := ParseText("t", "{{index .Fields.list 5}}")
	require.NoError(t, err, "missing keys are not an error at parse time")
	_, err = Text(tmpl, &event.Event{Fields: map[string]any{"list": []any{1}}}, MaxOutput)
	require.ErrorIs(t, err, sink.ErrPermanent)
	assert.NotErrorIs(t, err, ErrOutputTooLarge)
	assert.Contains(t, err.Error(), "template t")
	assert.Equal(t, "template", sink.ReasonClass(err))

	_, err = ParseText("t", "{{.Account.Nmae}}")
	assert.ErrorContains(t, err, "Nmae")
	assert.NotErrorIs(t, err, sink.ErrPermanent, "a configuration error, not a delivery's")
	_, err = ParseHTML("h", "<a href='{{.Account.StaircaseURL}}'>{{.Account.Name}}")
	assert.NoError(t, err)
}

func TestTemplatesReachRawFields(t *testing.T) {
	tmpl, err := ParseText("t", `{{.Fields.extra.owner}}|{{date .Signal.DetectedAt}}|{{upper .Signal.Severity}}|{{oneline .Signal.Summary}}`)
	require.NoError(t, err)
	ev := &event.Event{
		Fields: map[string]any{"extra": map[string]any{"owner": "dana"}},
		Signal: event.Signal{Severity: "high", Summary: "a\nb"},
	}
	out, err := Text(tmpl, ev, MaxOutput)
	require.NoError(t, err)
	assert.Equal(t, "dana||HIGH|a b", out)
}

func TestRenderCapIsExact(t *testing.T) {
	tmpl, err := ParseText("t", "{{.ID}}")
	require.NoError(t, err)
	out, err := Text(tmpl, &event.Event{ID: strings.Repeat("x", 10)}, 10)
	require.NoError(t, err)
	assert.Len(t, out, 10)
	_, err = Text(tmpl, &event.Event{ID: strings.Repeat("x", 11)}, 10)
	assert.ErrorIs(t, err, ErrOutputTooLarge)
}

func TestOrDefaultAndFieldError(t *testing.T) {
	assert.Equal(t, "def", OrDefault(" \n", "def"))
	assert.Equal(t, "x", OrDefault("x", "def"))
	assert.EqualError(t, FieldError("jira", "email", "required"), "jira.email: required")
	assert.EqualError(t, FieldError("", "email", "required"), "email: required")
}
