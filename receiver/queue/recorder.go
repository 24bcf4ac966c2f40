package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of RecorderOptions.
const (
	// DefaultRecorderFlush is how often a Recorder writes what it holds.
	DefaultRecorderFlush = time.Second
	// DefaultRecorderBuffer bounds what a Recorder holds between two
	// writes: refusals, and distinct (webhook, key, hour) counts.
	DefaultRecorderBuffer = 4096
)

// recorderBatch is how many buffered refusals make the Recorder write
// before its next tick: a burst of refused requests is written in batches
// of about this size instead of waiting for the tick with a full buffer.
const recorderBatch = 256

// insertChunk bounds the rows of one INSERT statement of a flush.
const insertChunk = 100

// flushTimeout bounds one write of a Recorder.
const flushTimeout = 10 * time.Second

// pruneKeyUseEvery is how often a Recorder deletes hours of key use older
// than KeyUseKept.
const pruneKeyUseEvery = time.Hour

// ErrRecorderClosed is returned by Flush after Close.
var ErrRecorderClosed = errors.New("queue: recorder closed")

// RecorderOptions configures NewRecorder. The zero value is ready to use.
type RecorderOptions struct {
	// FlushEvery is how often the buffer is written to the database.
	// Default value is DefaultRecorderFlush.
	FlushEvery time.Duration
	// Buffer bounds the refusals, and separately the key-use counts, held
	// between two writes; past it new ones are dropped and counted (see
	// Dropped). Default value is DefaultRecorderBuffer.
	Buffer int
}

// Recorder records refused requests and key uses in the database off the
// accept path: Refused and KeyUsed only append to a bounded buffer in
// memory (they never wait for the database), and a goroutine writes the
// buffer in one transaction every FlushEvery, or sooner when refusals pile
// up. When the buffer is full, or a write fails, what could not be kept is
// dropped and counted. Create it with Queue.NewRecorder and Close it
// before the Queue.
type Recorder struct {
	q    *Queue
	opts RecorderOptions

	mu      sync.Mutex // guards refused, uses
	refused []Refusal
	uses    map[keyHour]*keyCount

	droppedRefused, droppedUses atomic.Uint64

	flushMu    sync.Mutex // one write at a time
	lastPrune  time.Time  // guarded by flushMu
	kick, stop chan struct{}
	done       chan struct{}
	closeOnce  sync.Once
	closed     atomic.Bool
}

// keyHour is one count of key use: a key of a webhook in an hour.
type keyHour struct {
	webhook, label string
	hour           int64
}

type keyCount struct{ uses, last int64 }

// NewRecorder starts a Recorder writing into q's database.
func (q *Queue) NewRecorder(opts RecorderOptions) *Recorder {
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = DefaultRecorderFlush
	}
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultRecorderBuffer
	}
	r := &Recorder{q: q, opts: opts, uses: map[keyHour]*keyCount{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go r.loop()
	return r
}

// Refused records a refused request (see NewRefusal). Its Time, when zero,
// is now. It never waits for the database. On a nil *Recorder (a receiver
// without a database) it does nothing.
func (r *Recorder) Refused(f Refusal) {
	if r == nil {
		return
	}
	if f.Time.IsZero() {
		f.Time = r.q.opts.Now()
	}
	r.mu.Lock()
	if len(r.refused) >= r.opts.Buffer || r.closed.Load() {
		r.mu.Unlock()
		r.droppedRefused.Add(1)
		return
	}
	r.refused = append(r.refused, f)
	n := len(r.refused)
	r.mu.Unlock()
	if n == recorderBatch {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// KeyUsed records that the key label of webhook verified a request at at.
// It never waits for the database. On a nil *Recorder it does nothing.
func (r *Recorder) KeyUsed(webhook, label string, at time.Time) {
	if r == nil {
		return
	}
	k := keyHour{webhook: clip(webhook, maxWebhook), label: clip(label, maxWebhook), hour: hourOf(at)}
	ms := at.UnixMilli()
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.uses[k]
	if !ok {
		if len(r.uses) >= r.opts.Buffer || r.closed.Load() {
			r.droppedUses.Add(1)
			return
		}
		c = &keyCount{}
		r.uses[k] = c
	}
	c.uses++
	c.last = max(c.last, ms)
}

// Dropped returns how many refusals and key uses were lost so far: the
// buffer was full, or a write failed.
func (r *Recorder) Dropped() (refusals, keyUses uint64) {
	if r == nil {
		return 0, 0
	}
	return r.droppedRefused.Load(), r.droppedUses.Load()
}

// Flush writes what the Recorder holds now.
func (r *Recorder) Flush(ctx context.Context) error {
	if r.closed.Load() {
		return ErrRecorderClosed
	}
	return r.flush(ctx)
}

// Close stops the Recorder after writing what it holds (within ctx).
// Refused and KeyUsed drop what they are given after Close. Closing a nil
// *Recorder does nothing.
func (r *Recorder) Close(ctx context.Context) error {
	if r == nil {
		return nil
	}
	var err error
	r.closeOnce.Do(func() {
		close(r.stop)
		<-r.done
		r.mu.Lock()
		r.closed.Store(true)
		r.mu.Unlock()
		err = r.flush(ctx)
	})
	return err
}

func (r *Recorder) loop() {
	defer close(r.done)
	t := time.NewTicker(r.opts.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		case <-r.kick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		if err := r.flush(ctx); err != nil {
			r.q.log.Warn("recording refused requests and key use failed; dropped", "error", err.Error())
		}
		cancel()
	}
}

// flush writes the buffer in one transaction; what it held is dropped
// (and counted) when that fails.
func (r *Recorder) flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	// Take what is buffered under the lock; an empty buffer stays in
	// place and is not read after the unlock (KeyUsed writes to it).
	r.mu.Lock()
	var refused []Refusal
	var uses map[keyHour]*keyCount
	if len(r.refused) > 0 {
		refused, r.refused = r.refused, make([]Refusal, 0, len(r.refused))
	}
	if len(r.uses) > 0 {
		uses, r.uses = r.uses, map[keyHour]*keyCount{}
	}
	r.mu.Unlock()
	now := r.q.opts.Now()
	prune := now.Sub(r.lastPrune) >= pruneKeyUseEvery
	if len(refused) == 0 && len(uses) == 0 && !prune {
		return nil
	}
	err := r.write(ctx, refused, uses, now, prune)
	if err != nil {
		r.droppedRefused.Add(uint64(len(refused)))
		for _, c := range uses {
			r.droppedUses.Add(uint64(c.uses))
		}
		return fmt.Errorf("queue: recorder: %w", err)
	}
	if prune {
		r.lastPrune = now
	}
	return nil
}

func (r *Recorder) write(ctx context.Context, refused []Refusal, uses map[keyHour]*keyCount, now time.Time, prune bool) error {
	q := r.q
	tx, err := q.db.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for len(refused) > 0 {
		chunk := refused[:min(len(refused), insertChunk)]
		refused = refused[len(chunk):]
		var b strings.Builder
		b.WriteString("INSERT INTO stairhook_refused (at, remote, webhook, status, reason, hint, headers) VALUES ")
		args := make([]any, 0, len(chunk)*7)
		for i, f := range chunk {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
			args = append(args, f.Time.UnixMilli(), clip(f.Remote, maxRemote), clip(f.Webhook, maxWebhook), f.Status,
				clip(f.Reason, maxReason), clip(f.Hint, maxHint), onlySignatureHeaders(f.Headers))
		}
		if _, err := tx.ExecContext(ctx, q.rebind(b.String()), args...); err != nil {
			return err
		}
		if len(refused) == 0 {
			if _, err := tx.ExecContext(ctx, q.rebind(`DELETE FROM stairhook_refused
WHERE id <= (SELECT max(id) FROM stairhook_refused) - ?`), MaxRefused); err != nil {
				return err
			}
		}
	}
	greatest := "max"
	if q.db.pool != nil {
		greatest = "GREATEST"
	}
	upsert := q.rebind(`INSERT INTO stairhook_key_use (webhook, label, hour, uses, last_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (webhook, label, hour) DO UPDATE SET uses = stairhook_key_use.uses + excluded.uses,
	last_at = ` + greatest + `(stairhook_key_use.last_at, excluded.last_at)`)
	for k, c := range uses {
		if _, err := tx.ExecContext(ctx, upsert, k.webhook, k.label, k.hour, c.uses, c.last); err != nil {
			return err
		}
	}
	if prune {
		if _, err := tx.ExecContext(ctx, q.rebind("DELETE FROM stairhook_key_use WHERE hour < ?"), hourOf(now.Add(-KeyUseKept))); err != nil {
			return err
		}
	}
	return tx.Commit()
}
