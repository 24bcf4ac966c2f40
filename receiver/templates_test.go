package receiver

import (
	"strings"
	"testing"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
		assert.Equal(t, want, oneLine(in), "%q", in)
	}
}

func TestTruncateUTF16(t *testing.T) {
	assert.Equal(t, "abc", truncateUTF16("abc", 3))
	assert.Equal(t, "ab", truncateUTF16("abc", 2))
	assert.Equal(t, "a", truncateUTF16("a😀", 2), "a surrogate pair is not split")
	assert.Equal(t, "a😀", truncateUTF16("a😀", 3))
	assert.Equal(t, "éé", truncateUTF16("ééé", 2))
}

func TestTestMarker(t *testing.T) {
	ev := &event.Event{Test: true}
	assert.Equal(t, "[TEST] x", withTestMarker(ev, "x"))
	assert.Equal(t, "[TEST] x", withTestMarker(ev, "[TEST] x"), "not doubled")
	assert.Equal(t, "x", withTestMarker(&event.Event{}, "x"))
}

func TestTemplateErrorsArePermanent(t *testing.T) {
	tmpl, err := parseText("t", "{{index .Fields.list 5}}")
	require.NoError(t, err, "missing keys are not an error at parse time")
	_, err = renderText(tmpl, &event.Event{Fields: map[string]any{"list": []any{1}}}, MaxTemplateOutput)
	require.ErrorIs(t, err, ErrPermanent)
	assert.NotErrorIs(t, err, ErrTemplateOutputTooLarge)
	assert.Contains(t, err.Error(), "template t")

	_, err = parseText("t", "{{.Account.Nmae}}")
	assert.ErrorContains(t, err, "Nmae")
	_, err = parseHTML("h", "<a href='{{.Account.StaircaseURL}}'>{{.Account.Name}}")
	assert.NoError(t, err)
}

func TestTemplatesReachRawFields(t *testing.T) {
	tmpl, err := parseText("t", `{{.Fields.extra.owner}}|{{date .Signal.DetectedAt}}|{{upper .Signal.Severity}}|{{oneline .Signal.Summary}}`)
	require.NoError(t, err)
	ev := &event.Event{
		Fields: map[string]any{"extra": map[string]any{"owner": "dana"}},
		Signal: event.Signal{Severity: "high", Summary: "a\nb"},
	}
	out, err := renderText(tmpl, ev, MaxTemplateOutput)
	require.NoError(t, err)
	assert.Equal(t, "dana||HIGH|a b", out)
}

func TestRenderCapIsExact(t *testing.T) {
	tmpl, err := parseText("t", "{{.ID}}")
	require.NoError(t, err)
	out, err := renderText(tmpl, &event.Event{ID: strings.Repeat("x", 10)}, 10)
	require.NoError(t, err)
	assert.Len(t, out, 10)
	_, err = renderText(tmpl, &event.Event{ID: strings.Repeat("x", 11)}, 10)
	assert.ErrorIs(t, err, ErrTemplateOutputTooLarge)
}
