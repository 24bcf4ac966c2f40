package receiver

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// minimalEvent is the smallest body DecodeEvent accepts.
const minimalEvent = `{"id":"evt_1","type":"churn_risk","account":{"id":"acc_1"}}`

// withField returns minimalEvent with extra top-level JSON members.
func withField(members string) string {
	return strings.TrimSuffix(minimalEvent, "}") + "," + members + "}"
}

func nested(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

func people(n int) string {
	p := make([]string, n)
	for i := range p {
		p[i] = `{"name":"P","role":"user"}`
	}
	return "[" + strings.Join(p, ",") + "]"
}

func TestDecodeEventInvalid(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // part of the message
	}{
		{"empty", ``, "not a JSON object"},
		{"not JSON", `hello`, "JSON syntax error"},
		{"truncated", `{"id":"evt_1"`, "not a JSON object"},
		{"array", `[1,2]`, "expected a JSON object"},
		{"string", `"evt"`, "expected a JSON object"},
		{"null", `null`, "not a JSON object: null"},
		{"trailing data", minimalEvent + ` {}`, "data after the JSON object"},
		{"missing id", `{"type":"churn_risk","account":{"id":"acc_1"}}`, "missing id"},
		{"empty id", `{"id":"","type":"churn_risk","account":{"id":"acc_1"}}`, "missing id"},
		{"missing type", `{"id":"evt_1","account":{"id":"acc_1"}}`, "missing type"},
		{"missing account", `{"id":"evt_1","type":"churn_risk"}`, "missing account.id"},
		{"missing account.id", `{"id":"evt_1","type":"churn_risk","account":{"name":"Acme"}}`, "missing account.id"},
		{"id not a string", `{"id":5,"type":"churn_risk","account":{"id":"acc_1"}}`, "field id must be a string"},
		{"test not a bool", withField(`"test":"yes"`), "field test must be true or false"},
		{"people not an array", withField(`"people":{}`), "field people must be an array"},
		{"bad created_at", withField(`"created_at":"yesterday"`), "RFC 3339"},
		{"id with space", `{"id":"evt 1","type":"churn_risk","account":{"id":"acc_1"}}`, "visible ASCII"},
		{"type with newline", `{"id":"evt_1","type":"churn\nrisk","account":{"id":"acc_1"}}`, "control character"},

		// Bounds, each one past the limit (the limit itself is in
		// TestDecodeEventAtBounds).
		{"id 257 bytes", `{"id":"` + strings.Repeat("e", maxIDLen+1) + `","type":"t","account":{"id":"a"}}`, "id longer than 256"},
		{"type 129 bytes", `{"id":"e","type":"` + strings.Repeat("t", maxTypeLen+1) + `","account":{"id":"a"}}`, "type longer than 128"},
		{"summary 16 KiB + 1", withField(`"signal":{"summary":"` + strings.Repeat("s", maxStringLen+1) + `"}`), "string at signal.summary longer than 16384"},
		{"unknown field 16 KiB + 1", withField(`"extra":["` + strings.Repeat("x", maxStringLen+1) + `"]`), "string at extra[0] longer"},
		{"key 16 KiB + 1", withField(`"` + strings.Repeat("k", maxStringLen+1) + `":1`), "key at the top level longer"},
		{"depth 33", withField(`"deep":` + nested(maxDepth)), "nested deeper than 32"},
		{"depth 33 unclosed", `{"a":` + strings.Repeat("[", maxDepth), "nested deeper than 32"},
		{"201 people", withField(`"people":` + people(maxPeople+1)), "more than 200 people"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeEvent([]byte(tt.body))
			require.Error(t, err)
			assert.Nil(t, ev)
			assert.ErrorIs(t, err, ErrInvalidEvent)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestDecodeEventAtBounds(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"id 256 bytes", `{"id":"` + strings.Repeat("e", maxIDLen) + `","type":"t","account":{"id":"a"}}`},
		{"type 128 bytes", `{"id":"e","type":"` + strings.Repeat("t", maxTypeLen) + `","account":{"id":"a"}}`},
		{"summary 16 KiB", withField(`"signal":{"summary":"` + strings.Repeat("s", maxStringLen) + `"}`)},
		{"depth 32", withField(`"deep":` + nested(maxDepth-1))},
		{"brackets inside strings do not count", withField(`"s":"` + strings.Repeat("[{", 100) + `\""`)},
		{"200 people", withField(`"people":` + people(maxPeople))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeEvent([]byte(tt.body))
			require.NoError(t, err)
		})
	}
}

func TestDecodeEventKeepsUnknown(t *testing.T) {
	body := []byte(`{"id":"evt_9","type":"brand_new_type","created_at":"2026-11-26T10:00:00Z","test":true,
		"account":{"id":"acc_1","name":"Acme Corp","tier":"gold"},
		"signal":{"title":"T","score":12345678901234567890},
		"people":[{"name":"Ann","role":"champion"}],
		"extra":{"nested":[1,2,{"k":"v"}]}}`)
	ev, err := DecodeEvent(body)
	require.NoError(t, err)
	assert.Equal(t, "evt_9", ev.ID)
	assert.Equal(t, "brand_new_type", ev.Type)
	assert.True(t, ev.Test)
	assert.Equal(t, "Acme Corp", ev.Account.Name)
	assert.Equal(t, "champion", ev.People[0].Role)
	assert.Equal(t, 2026, ev.CreatedAt.Year())
	assert.Equal(t, string(body), string(ev.Raw))

	// Fields holds everything, numbers exactly.
	account := ev.Fields["account"].(map[string]any)
	assert.Equal(t, "gold", account["tier"])
	score := ev.Fields["signal"].(map[string]any)["score"]
	assert.Equal(t, json.Number("12345678901234567890"), score)
	assert.NotNil(t, ev.Fields["extra"])

	// Raw is a copy: the caller may reuse its buffer.
	body[2] = 'X'
	assert.Equal(t, byte('i'), ev.Raw[2])
}

func TestDecodeEventErrorDoesNotQuoteBody(t *testing.T) {
	const marker = "whsec_c2VjcmV0LXRoYXQtbXVzdC1ub3QtbGVhaw=="
	for _, body := range []string{
		`{"id":"` + marker + `"`,
		`{"id":["` + marker + `"],"type":"t","account":{"id":"a"}}`,
		`{"id":"e","type":"t","account":{"id":"a"},"created_at":"` + marker + `"}`,
		marker,
	} {
		_, err := DecodeEvent([]byte(body))
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "c2VjcmV0", "body %q", body)
	}
}

func TestSamples(t *testing.T) {
	require.Equal(t, KnownTypes, SampleTypes())
	seen := map[string]bool{}
	for _, typ := range SampleTypes() {
		t.Run(typ, func(t *testing.T) {
			body, err := Sample(typ)
			require.NoError(t, err)
			ev, err := DecodeEvent(body)
			require.NoError(t, err)
			assert.Equal(t, typ, ev.Type)
			assert.True(t, strings.HasPrefix(ev.ID, "evt_01J"), ev.ID)
			assert.False(t, seen[ev.ID], "duplicate sample id %s", ev.ID)
			seen[ev.ID] = true
			assert.Equal(t, "Acme Corp", ev.Account.Name)
			assert.NotEmpty(t, ev.Signal.Title)
			assert.NotEmpty(t, ev.Signal.Severity)
			assert.NotEmpty(t, ev.People)
			assert.False(t, ev.Test)
			assert.False(t, ev.CreatedAt.IsZero())
		})
	}
	_, err := Sample("no_such_type")
	assert.True(t, errors.Is(err, ErrNoSample))
}
