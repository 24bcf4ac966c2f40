package event

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// minimalEvent is the smallest body Decode accepts.
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
		{"type not a string", `{"id":"evt_1","type":["churn_risk"],"account":{"id":"acc_1"}}`, "field type must be a string, found array"},
		{"account.id not a string", `{"id":"evt_1","type":"churn_risk","account":{"id":7}}`, "field account.id must be a string, found number"},
		{"account not an object", `{"id":"evt_1","type":"churn_risk","account":"acc_1"}`, "field account must be an object, found string"},
		{"signal.title not a string", withField(`"signal":{"title":{}}`), "field signal.title must be a string, found object"},
		{"webhook not an object", withField(`"webhook":[]`), "field webhook must be an object, found array"},
		{"person not an object", withField(`"people":[{"name":"A"},"B"]`), "field people[1] must be an object, found string"},
		{"person.role not a string", withField(`"people":[{"role":true}]`), "field people[0].role must be a string, found bool"},
		// Keys match exactly: case variants are unknown fields, so these
		// have no id, type or account.id.
		{"ID in capitals", `{"ID":"evt_1","type":"renewal","account":{"id":"a"}}`, "missing id"},
		{"TYPE in capitals", `{"id":"evt_1","TYPE":"renewal","account":{"id":"a"}}`, "missing type"},
		{"Account.Id", `{"id":"evt_1","type":"renewal","Account":{"Id":"a"}}`, "missing account.id"},
		{"account.Id", `{"id":"evt_1","type":"renewal","account":{"Id":"a"}}`, "missing account.id"},
		{"all case variants", `{"ID":"evt_1","TYPE":"renewal","Account":{"Id":"a"}}`, "missing id"},
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
			ev, err := Decode([]byte(tt.body))
			require.Error(t, err)
			assert.Nil(t, ev)
			assert.ErrorIs(t, err, ErrInvalid)
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
			_, err := Decode([]byte(tt.body))
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
	ev, err := Decode(body)
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

// A date that does not parse leaves the zero time and keeps the raw value in
// Fields: rejecting the event with 400 would lose it, since the sender does
// not retry a 400.
func TestDecodeEventLenientDates(t *testing.T) {
	for _, raw := range []string{`""`, `"yesterday"`, `"2026-11-26 10:00:00"`, `"26/11/2026"`, `1764151200`, `true`, `{}`, `null`} {
		t.Run(raw, func(t *testing.T) {
			ev, err := Decode([]byte(withField(`"created_at":` + raw + `,"signal":{"title":"T","detected_at":` + raw + `}`)))
			require.NoError(t, err)
			assert.True(t, ev.CreatedAt.IsZero())
			assert.True(t, ev.Signal.DetectedAt.IsZero())
			assert.Equal(t, "T", ev.Signal.Title)
			want := decodeValue(t, raw)
			assert.Equal(t, want, ev.Fields["created_at"], "raw value kept")
			assert.Equal(t, want, ev.Fields["signal"].(map[string]any)["detected_at"])
		})
	}

	// RFC 3339 dates still parse, with fractions and offsets.
	ev, err := Decode([]byte(withField(`"created_at":"2026-11-26T11:00:00.5+01:00","signal":{"detected_at":"2026-11-26T09:00:00Z"}`)))
	require.NoError(t, err)
	assert.True(t, ev.CreatedAt.Equal(time.Date(2026, 11, 26, 10, 0, 0, 5e8, time.UTC)), ev.CreatedAt)
	assert.True(t, ev.Signal.DetectedAt.Equal(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)))
}

// decodeValue decodes one JSON value as Decode does for Fields.
func decodeValue(t *testing.T, raw string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	return v
}

// Known fields are read from their exact keys only; a key that differs in
// case is an unknown field, kept in Fields and ignored otherwise, whatever
// its type, so the typed fields always agree with Fields.
func TestDecodeEventExactKeys(t *testing.T) {
	body := `{"id":"evt_1","Id":"evt_2","ID":5,"type":"renewal","Type":"churn_risk","TEST":true,
		"account":{"id":"acc_1","ID":"acc_2","Name":"Other"},
		"Account":{"id":"acc_3"},
		"signal":{"title":"T","Title":["x"],"Detected_At":"2026-11-26T09:00:00Z"},
		"Signal":7,"People":"x"}`
	ev, err := Decode([]byte(body))
	require.NoError(t, err)
	assert.Equal(t, "evt_1", ev.ID)
	assert.Equal(t, "renewal", ev.Type)
	assert.False(t, ev.Test)
	assert.Equal(t, "acc_1", ev.Account.ID)
	assert.Empty(t, ev.Account.Name)
	assert.Equal(t, "T", ev.Signal.Title)
	assert.True(t, ev.Signal.DetectedAt.IsZero())
	assert.Empty(t, ev.People)
	assert.Equal(t, ev.ID, ev.Fields["id"])
	assert.Equal(t, ev.Type, ev.Fields["type"])
	assert.Equal(t, ev.Account.ID, ev.Fields["account"].(map[string]any)["id"])
	assert.Equal(t, json.Number("5"), ev.Fields["ID"], "case variants are kept as unknown fields")
}

// null counts as absent, as encoding/json has it.
func TestDecodeEventNulls(t *testing.T) {
	ev, err := Decode([]byte(withField(`"test":null,"webhook":null,"signal":{"title":null},"people":[null,{"name":null}]`)))
	require.NoError(t, err)
	assert.False(t, ev.Test)
	assert.Empty(t, ev.Signal.Title)
	assert.Equal(t, []Person{{}, {}}, ev.People)
}

func TestDecodeEventErrorDoesNotQuoteBody(t *testing.T) {
	const marker = "whsec_c2VjcmV0LXRoYXQtbXVzdC1ub3QtbGVhaw=="
	for _, body := range []string{
		`{"id":"` + marker + `"`,
		`{"id":["` + marker + `"],"type":"t","account":{"id":"a"}}`,
		`{"id":"e","type":"t","account":{"id":"a"},"signal":{"title":["` + marker + `"]}}`,
		marker,
	} {
		_, err := Decode([]byte(body))
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "c2VjcmV0", "body %q", body)
	}
}

func TestSamples(t *testing.T) {
	require.Equal(t, KnownTypes(), SampleTypes())
	seen := map[string]bool{}
	for _, typ := range SampleTypes() {
		t.Run(typ, func(t *testing.T) {
			body, err := Sample(typ)
			require.NoError(t, err)
			ev, err := Decode(body)
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
