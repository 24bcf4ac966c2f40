package render

import (
	"strings"
	"testing"
	"unicode"

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
		"tab\tand\x00nul\x1b[31m":   "tab andnul [31m", // NUL goes, ESC is a space
		"ls\u2028ps\u2029nel\u0085": "ls ps nel",
		"bad \xff utf8":             "bad \uFFFD utf8",
		"\r\n\r\n":                  "",
	}
	for in, want := range cases {
		assert.Equal(t, want, OneLine(in), "%q", in)
	}
}

// Format characters and NUL are removed from one-line fields, not turned
// into spaces: they are invisible, and a sender uses them to make a subject
// or a summary read backwards (U+202E) or to hide a word.
func TestOneLineStripsFormatCharacters(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"RIGHT-TO-LEFT OVERRIDE", "Invoice \u202Efdp.exe", "Invoice fdp.exe"},
		{"override closed by PDF", "a\u202Dltr\u202Cb", "altrb"},
		{"embeddings U+202A, U+202B", "\u202Aa\u202Bb", "ab"},
		{"LRI U+2066", "a\u2066b", "ab"},
		{"RLI U+2067", "a\u2067b", "ab"},
		{"FSI U+2068", "a\u2068b", "ab"},
		{"PDI U+2069", "a\u2069b", "ab"},
		{"ZERO WIDTH SPACE U+200B", "pay\u200Bpal", "paypal"},
		{"LRM U+200E", "a\u200Eb", "ab"},
		{"RLM U+200F", "a\u200Fb", "ab"},
		{"BOM U+FEFF", "\uFEFFtitle", "title"},
		{"ARABIC LETTER MARK U+061C", "a\u061Cb", "ab"},
		{"SOFT HYPHEN U+00AD", "a\u00ADb", "ab"},
		{"tag characters", "flag\U000E0067\U000E007F", "flag"},
		{"NUL", "a\x00b", "ab"},
		{"only format characters", "\u202E\u2066\x00\uFEFF", ""},
		{"beside spaces", "a \u202E b", "a b"},
		{"beside a line break", "a\u200B\r\nb", "a b"},
		{"Hebrew kept", "שלום world", "שלום world"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, OneLine(tc.in), tc.name)
	}
}

// Every character of Unicode category Cf, as the unicode package has it,
// is removed from a one-line field.
func TestOneLineStripsEveryCf(t *testing.T) {
	n := 0
	each := func(lo, hi, stride uint32) {
		for r := lo; r <= hi; r += stride {
			n++
			if got := OneLine("a" + string(rune(r)) + "b"); got != "ab" {
				t.Errorf("U+%04X: OneLine kept it: %q", r, got)
			}
		}
	}
	for _, r := range unicode.Cf.R16 {
		each(uint32(r.Lo), uint32(r.Hi), uint32(r.Stride))
	}
	for _, r := range unicode.Cf.R32 {
		each(r.Lo, r.Hi, r.Stride)
	}
	assert.Greater(t, n, 150, "the table covers the whole category")
}

// A body keeps its lines and format characters; only NUL goes.
func TestBody(t *testing.T) {
	assert.Equal(t, "line one\nline two", Body("line\x00 one\nline two\x00"))
	assert.Equal(t, "שלום\u200F, world\r\n", Body("שלום\u200F, world\r\n"))
	assert.Equal(t, "", Body("\x00\x00"))
}

func TestLink(t *testing.T) {
	cases := map[string]string{
		"https://app.staircase.ai/accounts/1?a=b": "https://app.staircase.ai/accounts/1?a=b",
		"http://localhost:8080/x":                 "http://localhost:8080/x",
		// No credential is shown, nor passes for the host.
		"https://bot:S3cr3t@app.staircase.ai/a":  "https://app.staircase.ai/a",
		"https://app.staircase.ai@evil.example/": "https://evil.example/",
		// Not a link to follow.
		"javascript:alert(1)":         "",
		"data:text/html,x":            "",
		"/relative":                   "",
		"https://":                    "",
		"":                            "",
		"https://a.example/\nb":       "",
		"https://a.example/\u202Eexe": "",
		"https://a.example/\x00":      "",
	}
	for in, want := range cases {
		assert.Equal(t, want, Link(in), "%q", in)
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

func TestWebhookOf(t *testing.T) {
	assert.Equal(t, "staircase", WebhookOf("staircase.route1.jira"))
	assert.Equal(t, "x-w", WebhookOf("x-w.r.email"))
	assert.Equal(t, "jira:CS", WebhookOf("jira:CS"), "a name without a dot is its own webhook")
}
