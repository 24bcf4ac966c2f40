package receiver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/queue"
	"github.com/stairhook/stairhook/verify"
)

// DeadLetterFile is the name of the dead-letter file in the outbox folder.
const DeadLetterFile = "deadletter.jsonl"

// Bounds of a dead-letter record. The body is stored as received, compacted
// JSON without HTML escaping: a valid JSON text holds control characters
// and everything else that JSON escapes already escaped, so the stored body
// is never longer than the body the server accepted, at most the verify
// middleware's cap (the server uses its default).
const (
	// maxDeadLetterBody is the largest body a record holds.
	maxDeadLetterBody = verify.DefaultMaxBodyBytes
	// maxDeadLetterMeta bounds the rest of a record: the time, the webhook
	// and sink names (at most 64 bytes each part, see Config), the event
	// id (256 bytes) and the error (maxDeadLetterError bytes, at most 6
	// times that once JSON-escaped).
	maxDeadLetterMeta = 64 << 10
	// maxDeadLetterRecord bounds a line the server writes; a longer one is
	// refused, so every record written can be read back.
	maxDeadLetterRecord = maxDeadLetterBody + maxDeadLetterMeta
	// maxDeadLetterLine bounds a line when reading. It is larger than
	// maxDeadLetterRecord because files written before the body was stored
	// unescaped have <, > and & in bodies as \u003c and the like: 6 bytes
	// for 1, so up to 6 times the body.
	maxDeadLetterLine = 6*maxDeadLetterBody + maxDeadLetterMeta
	// maxReportedLines bounds the invalid lines one error of
	// ReadDeadLetters names; the rest are counted.
	maxReportedLines = 20
)

// maxDeadLetterError bounds the error text kept per record.
const maxDeadLetterError = 4 << 10

// ErrInvalidDeadLetter means a line of a dead-letter file is not a record
// written by the server (for example one cut short by a crash, or edited by
// hand).
var ErrInvalidDeadLetter = errors.New("receiver: invalid dead-letter record")

// errDeadLetterTooLarge means a record would not fit the line the reader
// accepts; the server then answers 503 rather than write it.
var errDeadLetterTooLarge = errors.New("receiver: dead-letter record too large")

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
	// Error is the sink's reason, cut to 4 KiB.
	Error string `json:"error"`
	// Body is the event as received: compacted JSON, written without HTML
	// escaping, so a record is at most the body's size plus 64 KiB.
	Body json.RawMessage `json:"body"`
}

// ReadDeadLetters reads every record of a dead-letter file. Blank lines are
// skipped. A line that is not a record (not JSON, without event_id, sink or
// body, or longer than a record can be) is skipped too, and reported: the
// records of every other line are returned together with an error that
// joins one error per invalid line, each wrapping ErrInvalidDeadLetter and
// naming the line number (the first 20, then how many more). So one damaged
// line never hides the others, and a caller that finds
// errors.Is(err, ErrInvalidDeadLetter) may use the records and report the
// lines. Any other error is a failure to read r: the records before it are
// returned, and the error does not wrap ErrInvalidDeadLetter.
//
// Memory is bounded by the records returned plus one line: a line longer
// than the limit (six times the 1 MiB body cap, plus 64 KiB, which also
// covers files written by earlier versions that HTML-escaped bodies) is
// read through and dropped.
func ReadDeadLetters(r io.Reader) ([]DeadLetter, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var out []DeadLetter
	var bad []error
	more := 0
	report := func(n int, msg string) {
		if len(bad) < maxReportedLines {
			bad = append(bad, fmt.Errorf("%w: line %d: %s", ErrInvalidDeadLetter, n, msg))
		} else {
			more++
		}
	}
	for n := 1; ; n++ {
		line, tooLong, err := readLine(br, maxDeadLetterLine)
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, fmt.Errorf("receiver: reading dead letters: line %d: %w", n, err)
		}
		if tooLong {
			report(n, fmt.Sprintf("longer than %d bytes", maxDeadLetterLine))
			continue
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var d DeadLetter
		if err := json.Unmarshal(line, &d); err != nil {
			report(n, "not a JSON record")
			continue
		}
		if d.EventID == "" || d.Sink == "" || len(d.Body) == 0 {
			report(n, "event_id, sink or body missing")
			continue
		}
		out = append(out, d)
	}
	if more > 0 {
		bad = append(bad, fmt.Errorf("%w: %d more invalid lines", ErrInvalidDeadLetter, more))
	}
	return out, errors.Join(bad...)
}

// readLine returns the next line of br without its line feed, or io.EOF
// when there is none. A line longer than max bytes is read to its end but
// not kept: readLine then reports tooLong and no bytes, so memory stays
// within max plus br's buffer.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		frag, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(frag) > max+1 { // +1: the line feed
				tooLong, line = true, nil
			} else {
				line = append(line, frag...)
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && (len(line) > 0 || tooLong):
			err = nil // a last line without a line feed
		case err != nil:
			return nil, false, err
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		if len(line) > max {
			return nil, true, nil
		}
		return line, tooLong, nil
	}
}

// deadLetters appends records to the dead-letter file, one write and one
// fsync per delivery, so a record is on disk before the sender is told 422.
type deadLetters struct {
	mu   sync.Mutex
	path string
}

func (d *deadLetters) append(recs []DeadLetter) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// HTML escaping would store each <, > and & of the body as 6 bytes.
	enc.SetEscapeHTML(false)
	for _, rec := range recs {
		rec.Error = clipText(rec.Error, maxDeadLetterError)
		start := buf.Len()
		if err := enc.Encode(rec); err != nil { // one line, with its line feed
			return err
		}
		if n := buf.Len() - start - 1; n > maxDeadLetterRecord {
			return fmt.Errorf("%w: %d bytes for event %s, sink %s (at most %d)", errDeadLetterTooLarge, n, rec.EventID, rec.Sink, maxDeadLetterRecord)
		}
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

// importDeadLetters moves the dead-letter file of an older version, if
// the outbox has one, into the database: each record becomes a dead job
// that `stairhook deadletter replay` queues like any other. The file is
// then renamed (deadletter.jsonl.imported), so it is imported once.
func (s *Server) importDeadLetters(ctx context.Context, c *Config) error {
	path := filepath.Join(c.Outbox, DeadLetterFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("receiver: dead-letter file to import: %w", err)
	}
	recs, rerr := ReadDeadLetters(f)
	f.Close()
	if rerr != nil && recs == nil {
		return fmt.Errorf("receiver: import %s: %w", path, rerr)
	}
	if rerr != nil {
		s.log.Warn("dead-letter import: lines skipped", "file", path, "error", rerr.Error())
	}
	for _, rec := range recs {
		a := &queue.Accepted{Webhook: rec.Webhook, EventID: rec.EventID, Type: "unknown", Scheme: "imported", Body: rec.Body, Sinks: []string{rec.Sink}}
		if ev, err := event.Decode(rec.Body); err == nil {
			a.Type, a.Account, a.Test = ev.Type, ev.Account.ID, ev.Test
		}
		if err := s.queue.Bury(ctx, a, rec.Time, rec.Error); err != nil {
			return fmt.Errorf("receiver: import %s: %w", path, err)
		}
	}
	if err := os.Rename(path, path+".imported"); err != nil {
		return fmt.Errorf("receiver: imported %s but could not rename it: %w", path, err)
	}
	s.log.Info("dead letters imported into the database", "file", path, "records", len(recs), "renamed", path+".imported")
	return nil
}
