package receiver

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeadLettersRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	d := &deadLetters{path: filepath.Join(dir, DeadLetterFile)}
	body, err := Sample(TypeChurnRisk)
	require.NoError(t, err)
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	require.NoError(t, d.append([]DeadLetter{
		{Time: at, Webhook: "staircase", EventID: "evt_1", Sink: "staircase.route1.jira", Error: "jira 400: bad\nproject", Body: body},
		{Time: at, Webhook: "staircase", EventID: "evt_1", Sink: "staircase.route1.email", Error: strings.Repeat("e", maxDeadLetterError+10), Body: body},
	}))
	require.NoError(t, d.append([]DeadLetter{{Time: at, Webhook: "staircase", EventID: "evt_2", Sink: "s", Error: "x", Body: json.RawMessage(`{"id":"evt_2"}`)}}))

	st, err := os.Stat(d.path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	dst, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), dst.Mode().Perm())

	raw, err := os.ReadFile(d.path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	require.Len(t, lines, 3, "one JSON line per record")
	assert.Contains(t, lines[0], `"event_id":"evt_1"`)
	assert.Contains(t, lines[0], `"sink":"staircase.route1.jira"`)

	f, err := os.Open(d.path)
	require.NoError(t, err)
	defer f.Close()
	recs, err := ReadDeadLetters(f)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	assert.True(t, recs[0].Time.Equal(at))
	assert.Equal(t, "jira 400: bad\nproject", recs[0].Error)
	assert.JSONEq(t, string(body), string(recs[0].Body))
	assert.LessOrEqual(t, len(recs[1].Error), maxDeadLetterError+len("…"), "error text is capped")
	assert.Equal(t, "evt_2", recs[2].EventID)
}

func TestDeadLettersConcurrent(t *testing.T) {
	d := &deadLetters{path: filepath.Join(t.TempDir(), DeadLetterFile)}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, d.append([]DeadLetter{{EventID: "evt", Sink: "s", Body: json.RawMessage(`{"n":` + strings.Repeat("1", i+1) + `}`)}}))
		}()
	}
	wg.Wait()
	f, err := os.Open(d.path)
	require.NoError(t, err)
	defer f.Close()
	recs, err := ReadDeadLetters(f)
	require.NoError(t, err)
	assert.Len(t, recs, 20, "no interleaved lines")
}

func TestReadDeadLettersInvalid(t *testing.T) {
	good := `{"time":"2026-11-26T10:00:00Z","webhook":"w","event_id":"e","sink":"s","error":"x","body":{"id":"e"}}`
	tests := []struct {
		name, in, want string
	}{
		{"not JSON", good + "\n{oops\n", "line 2: not a JSON record"},
		{"cut short by a crash", good + "\n" + good[:40], "line 2: not a JSON record"},
		{"missing body", `{"event_id":"e","sink":"s"}`, "line 1: event_id, sink or body missing"},
		{"missing sink", `{"event_id":"e","body":{}}`, "line 1: event_id, sink or body missing"},
		{"line too long", `{"event_id":"` + strings.Repeat("x", maxDeadLetterLine) + `"}`, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadDeadLetters(strings.NewReader(tt.in))
			require.ErrorIs(t, err, ErrInvalidDeadLetter)
			assert.Contains(t, err.Error(), tt.want)
		})
	}

	recs, err := ReadDeadLetters(strings.NewReader("\n" + good + "\n\n  \n" + good))
	require.NoError(t, err)
	assert.Len(t, recs, 2, "blank lines and a missing final newline are fine")
	recs, err = ReadDeadLetters(strings.NewReader(""))
	require.NoError(t, err)
	assert.Empty(t, recs)
}
