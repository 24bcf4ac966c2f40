package receiver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DeadLetterFile is the name of the dead-letter file in the outbox folder.
const DeadLetterFile = "deadletter.jsonl"

// maxDeadLetterLine bounds one line of the dead-letter file when reading it
// back: a body (at most the middleware's 1 MiB cap) and its metadata.
const maxDeadLetterLine = 4 << 20

// maxDeadLetterError bounds the error text kept per record.
const maxDeadLetterError = 4 << 10

// ErrInvalidDeadLetter means a line of a dead-letter file is not a record
// written by the server (for example one cut short by a crash).
var ErrInvalidDeadLetter = errors.New("receiver: invalid dead-letter record")

// DeadLetter is one record of the dead-letter file: an event a sink
// rejected permanently, with the reason, so that it can be replayed once
// the configuration is fixed (stairhook deadletter replay). The server
// writes one JSON line per failed sink.
type DeadLetter struct {
	// Time is when the sink rejected the event.
	Time time.Time `json:"time"`
	// Webhook is the name of the webhook that received it.
	Webhook string `json:"webhook"`
	// EventID is the event's id.
	EventID string `json:"event_id"`
	// Sink is the Name of the sink that rejected it.
	Sink string `json:"sink"`
	// Error is the sink's reason.
	Error string `json:"error"`
	// Body is the event as received (compacted JSON).
	Body json.RawMessage `json:"body"`
}

// ReadDeadLetters reads every record of a dead-letter file. Blank lines are
// skipped; any other line that is not a record is an error wrapping
// ErrInvalidDeadLetter that names the line.
func ReadDeadLetters(r io.Reader) ([]DeadLetter, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxDeadLetterLine)
	var out []DeadLetter
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var d DeadLetter
		if err := json.Unmarshal(line, &d); err != nil {
			return out, fmt.Errorf("%w: line %d: not a JSON record", ErrInvalidDeadLetter, n)
		}
		if d.EventID == "" || d.Sink == "" || len(d.Body) == 0 {
			return out, fmt.Errorf("%w: line %d: event_id, sink or body missing", ErrInvalidDeadLetter, n)
		}
		out = append(out, d)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return out, fmt.Errorf("%w: a line is longer than %d bytes", ErrInvalidDeadLetter, maxDeadLetterLine)
		}
		return out, err
	}
	return out, nil
}

// deadLetters appends records to the dead-letter file, one write and one
// fsync per delivery, so a record is on disk before the sender is told 422.
type deadLetters struct {
	mu   sync.Mutex
	path string
}

func (d *deadLetters) append(recs []DeadLetter) error {
	var buf bytes.Buffer
	for _, rec := range recs {
		rec.Error = clipText(rec.Error, maxDeadLetterError)
		line, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(d.path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// clipText cuts s to at most n bytes on a UTF-8 boundary, marking the cut.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
