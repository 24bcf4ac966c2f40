package receiver

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeadLettersRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	d := &deadLetters{path: filepath.Join(dir, DeadLetterFile)}
	body, err := event.Sample(event.TypeChurnRisk)
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
		{"missing body", `{"event_id":"e","sink":"s"}` + "\n" + good, "line 1: event_id, sink or body missing"},
		{"missing sink", `{"event_id":"e","body":{}}` + "\n" + good, "line 1: event_id, sink or body missing"},
		{"line too long", `{"event_id":"` + strings.Repeat("x", maxDeadLetterLine) + `"}` + "\n" + good, "line 1: longer than"},
		{"too long without a final line feed", good + "\n" + strings.Repeat("x", maxDeadLetterLine+1), "line 2: longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := ReadDeadLetters(strings.NewReader(tt.in))
			require.ErrorIs(t, err, ErrInvalidDeadLetter)
			assert.Contains(t, err.Error(), tt.want)
			assert.Len(t, recs, 1, "the good line is read, whatever its place")
		})
	}

	recs, err := ReadDeadLetters(strings.NewReader("\n" + good + "\n\n  \n" + good))
	require.NoError(t, err)
	assert.Len(t, recs, 2, "blank lines and a missing final newline are fine")
	recs, err = ReadDeadLetters(strings.NewReader(""))
	require.NoError(t, err)
	assert.Empty(t, recs)
	// The longest line accepted, exactly at the limit.
	pad := maxDeadLetterLine - len(good) + len(`"error":"x"`) - len(`"error":""`)
	atLimit := strings.Replace(good, `"error":"x"`, `"error":"`+strings.Repeat("x", pad)+`"`, 1)
	require.Len(t, atLimit, maxDeadLetterLine)
	recs, err = ReadDeadLetters(strings.NewReader(atLimit + "\n" + good))
	require.NoError(t, err)
	assert.Len(t, recs, 2)
}

// A damaged line does not make the others unreadable: every good record is
// returned, with one error naming each bad line.
func TestReadDeadLettersSkipsBadLines(t *testing.T) {
	good := func(id string) string {
		return `{"time":"2026-11-26T10:00:00Z","webhook":"w","event_id":"` + id + `","sink":"s","error":"x","body":{"id":"` + id + `"}}`
	}
	in := strings.Join([]string{
		good("evt_1"),
		"{oops",
		good("evt_2"),
		`{"event_id":"` + strings.Repeat("x", maxDeadLetterLine) + `"}`,
		good("evt_3"),
		`{"event_id":"e"}`,
		good("evt_4")[:50],
	}, "\n")
	recs, err := ReadDeadLetters(strings.NewReader(in))
	require.ErrorIs(t, err, ErrInvalidDeadLetter)
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.EventID)
	}
	assert.Equal(t, []string{"evt_1", "evt_2", "evt_3"}, ids)
	var joined interface{ Unwrap() []error }
	require.ErrorAs(t, err, &joined)
	var lines []string
	for _, e := range joined.Unwrap() {
		require.ErrorIs(t, e, ErrInvalidDeadLetter)
		lines = append(lines, e.Error())
	}
	assert.Equal(t, []string{
		"receiver: invalid dead-letter record: line 2: not a JSON record",
		fmt.Sprintf("receiver: invalid dead-letter record: line 4: longer than %d bytes", maxDeadLetterLine),
		"receiver: invalid dead-letter record: line 6: event_id, sink or body missing",
		"receiver: invalid dead-letter record: line 7: not a JSON record",
	}, lines)
	assert.NotContains(t, err.Error(), "oops", "no line is quoted")

	// Many bad lines: the error names the first ones and counts the rest.
	in = strings.Repeat("{oops\n", maxReportedLines+30) + good("evt_5")
	recs, err = ReadDeadLetters(strings.NewReader(in))
	require.ErrorIs(t, err, ErrInvalidDeadLetter)
	require.Len(t, recs, 1)
	require.ErrorAs(t, err, &joined)
	require.Len(t, joined.Unwrap(), maxReportedLines+1)
	assert.Contains(t, err.Error(), "line 20: not a JSON record")
	assert.NotContains(t, err.Error(), "line 21:")
	assert.Contains(t, err.Error(), "30 more invalid lines")
}

// failingReader returns its data, then an error.
type failingReader struct {
	data string
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.data == "" {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestReadDeadLettersReadError(t *testing.T) {
	good := `{"event_id":"e","sink":"s","body":{}}`
	boom := errors.New("disk gone")
	recs, err := ReadDeadLetters(&failingReader{data: good + "\n{oops\n" + good, err: boom})
	require.ErrorIs(t, err, boom)
	assert.NotErrorIs(t, err, ErrInvalidDeadLetter, "a read failure is not a bad line")
	assert.Contains(t, err.Error(), "line 3")
	assert.Len(t, recs, 1, "the records before the failure")
}

// bigBody is a valid event body of about size bytes whose strings are full
// of what JSON or HTML escaping lengthens: s repeated.
func bigBody(t *testing.T, s string, size int) json.RawMessage {
	t.Helper()
	chunk := `"` + strings.Repeat(s, 8<<10/len(s)) + `"`
	var b strings.Builder
	b.WriteString(`{"id":"evt_big","type":"churn_risk","account":{"id":"acc_1"},"extra":[`)
	for b.Len()+len(chunk)+3 <= size {
		if !strings.HasSuffix(b.String(), "[") {
			b.WriteByte(',')
		}
		b.WriteString(chunk)
	}
	b.WriteString("]}")
	require.True(t, json.Valid([]byte(b.String())))
	require.LessOrEqual(t, b.Len(), size)
	return json.RawMessage(b.String())
}

// A body at the server's cap full of <, >, & (which HTML escaping stores as
// 6 bytes each), of escaped control characters, or of U+2028 (3 bytes, 6
// escaped) is stored at its own size and read back: the record stays far
// below the read limit.
func TestDeadLettersLargeBodies(t *testing.T) {
	for name, s := range map[string]string{
		"angle brackets":     "<>&",
		"control characters": `\u0001\u001f\n\t`,
		"line separators":    "\u2028\u2029",
		"mixed":              `<\u0000` + "\u2028" + `&\"\\`,
	} {
		t.Run(name, func(t *testing.T) {
			body := bigBody(t, s, maxDeadLetterBody)
			require.Greater(t, len(body), maxDeadLetterBody-(20<<10))
			ev, err := event.Decode(body)
			require.NoError(t, err, "a body the server accepts")

			d := &deadLetters{path: filepath.Join(t.TempDir(), DeadLetterFile)}
			rec := DeadLetter{Time: time.Now(), Webhook: "staircase", EventID: ev.ID, Sink: "staircase.route1.jira", Error: strings.Repeat("\x01<", maxDeadLetterError), Body: ev.Raw}
			require.NoError(t, d.append([]DeadLetter{rec, rec}))
			raw, err := os.ReadFile(d.path)
			require.NoError(t, err)
			for _, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
				assert.LessOrEqual(t, len(line), len(body)+maxDeadLetterMeta, "stored at its own size")
			}

			f, err := os.Open(d.path)
			require.NoError(t, err)
			defer f.Close()
			recs, err := ReadDeadLetters(f)
			require.NoError(t, err)
			require.Len(t, recs, 2)
			assert.Equal(t, string(body), string(recs[0].Body), "the body comes back byte for byte")
		})
	}
}

// Files written before bodies were stored unescaped (json.Marshal, which
// escapes <, > and & as \u003c…) still read, even for the largest body.
func TestReadDeadLettersOldFormat(t *testing.T) {
	body := bigBody(t, "<>&", maxDeadLetterBody)
	line, err := json.Marshal(DeadLetter{Webhook: "w", EventID: "evt_big", Sink: "s", Error: "x", Body: body})
	require.NoError(t, err)
	require.Greater(t, len(line), 5*maxDeadLetterBody, "the old format escaped every character")
	recs, err := ReadDeadLetters(strings.NewReader(string(line) + "\n"))
	require.NoError(t, err)
	require.Len(t, recs, 1)
	var a, b any
	require.NoError(t, json.Unmarshal(body, &a))
	require.NoError(t, json.Unmarshal(recs[0].Body, &b))
	assert.Equal(t, a, b)
}

// The writer refuses a record the reader could not read back; the server
// then answers 503 instead of losing the event.
func TestDeadLettersRefuseOversizeRecord(t *testing.T) {
	d := &deadLetters{path: filepath.Join(t.TempDir(), DeadLetterFile)}
	body := json.RawMessage(`"` + strings.Repeat("x", maxDeadLetterRecord) + `"`)
	err := d.append([]DeadLetter{{EventID: "e", Sink: "s", Body: json.RawMessage(`{}`)}, {EventID: "e", Sink: "s2", Body: body}})
	require.ErrorIs(t, err, errDeadLetterTooLarge)
	assert.NotContains(t, err.Error(), "xxxx")
	_, statErr := os.Stat(d.path)
	assert.ErrorIs(t, statErr, os.ErrNotExist, "nothing written, not even the first record")
}
