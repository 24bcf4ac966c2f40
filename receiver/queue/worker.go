package queue

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/riverqueue/river"
)

// completeTimeout bounds the transaction that records a delivered job.
const completeTimeout = 10 * time.Second

// errGaveUp marks the last error of a job that ran out of GiveUpAfter.
var errGaveUp = errors.New("gave up")

// worker works DeliveryArgs jobs through Options.Work.
type worker struct {
	river.WorkerDefaults[DeliveryArgs]
	q *Queue
}

func (w *worker) Work(ctx context.Context, job *river.Job[DeliveryArgs]) error {
	q := w.q
	a := job.Args
	body, received, err := q.loadEvent(ctx, a.Webhook, a.EventID)
	if errors.Is(err, sql.ErrNoRows) {
		// Nothing to deliver, ever: the event was deleted under the job.
		return river.JobCancel(fmt.Errorf("event %s of webhook %s is not in the database", a.EventID, a.Webhook))
	}
	if err != nil {
		return fmt.Errorf("load event: %w", err) // the database: retried
	}
	// The attempt's timing is the sink's, on River's clock (its errors'
	// and the job's times are not Options.Now's). River keeps the note
	// with the job whatever the outcome; complete, below, writes it with
	// the success.
	began := time.Now()
	res := q.opts.Work(ctx, &Delivery{
		JobID: job.ID, Webhook: a.Webhook, EventID: a.EventID, Sink: a.Sink,
		Attempt: job.Attempt, ReceivedAt: received, Body: body, Trace: traceOf(job),
	})
	_ = NoteAttempt(ctx, job.Attempt, began, time.Since(began)) // ctx is River's: never ErrNotInWorker
	if res.Err == nil {
		// Recorded at once, detached from the attempt's deadline, which the
		// sink may have used up. If that fails, River's completer records
		// it after this returns.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), completeTimeout)
		defer cancel()
		if err := q.eng.complete(cctx, job); err != nil {
			q.log.Warn("recording a delivered job failed; River's completer records it", "job", job.ID, "error", err.Error())
		}
		return nil
	}
	started := startOf(job)
	switch {
	case res.Permanent:
		q.logDead(job, "permanent", res.Err)
		return river.JobCancel(res.Err)
	case res.Wait > 0:
		if q.opts.Now().Add(res.Wait).Sub(started) > q.opts.GiveUpAfter {
			q.logDead(job, "gave_up", res.Err)
			return river.JobCancel(fmt.Errorf("%w after %v: %w", errGaveUp, q.opts.GiveUpAfter, res.Err))
		}
		return river.JobSnooze(res.Wait)
	}
	if q.opts.Now().Add(q.backoff(job.Attempt)).Sub(started) > q.opts.GiveUpAfter {
		q.logDead(job, "gave_up", res.Err)
		return river.JobCancel(fmt.Errorf("%w after %v: %w", errGaveUp, q.opts.GiveUpAfter, res.Err))
	}
	return res.Err
}

// traceOf is the traceparent kept with the job, "" when it has none.
func traceOf(job *river.Job[DeliveryArgs]) string {
	// Most jobs have none when tracing is off: skip decoding their
	// metadata (attempt notes and receipts) for nothing.
	if !bytes.Contains(job.Metadata, []byte(`"traceparent"`)) {
		return ""
	}
	var m jobMeta
	if json.Unmarshal(job.Metadata, &m) != nil || len(m.Trace) > maxTraceparent {
		return ""
	}
	return m.Trace
}

// NextRetry spaces the attempts: FirstRetry, doubling, capped at
// MaxRetry, with jitter.
func (w *worker) NextRetry(job *river.Job[DeliveryArgs]) time.Time {
	return w.q.opts.Now().Add(w.q.backoff(job.Attempt))
}

// Timeout bounds one attempt.
func (w *worker) Timeout(*river.Job[DeliveryArgs]) time.Duration { return w.q.opts.AttemptTimeout }

// backoff is the wait after the attempt-th failed attempt: FirstRetry ×
// 2^(attempt-1), at most MaxRetry, then a random three quarters to all
// of it, so jobs that failed together do not all come back together.
func (q *Queue) backoff(attempt int) time.Duration {
	d := q.opts.FirstRetry
	for i := 1; i < attempt && d < q.opts.MaxRetry; i++ {
		d *= 2
	}
	d = min(d, q.opts.MaxRetry)
	return d - time.Duration(rand.Int64N(int64(d/4)+1))
}

// startOf is when the job's give-up clock started: when it was queued, or
// replayed (a replay queues a new job).
func startOf(job *river.Job[DeliveryArgs]) time.Time { return job.CreatedAt }

func (q *Queue) logDead(job *river.Job[DeliveryArgs], why string, err error) {
	q.log.LogAttrs(context.Background(), slog.LevelWarn, "dead letter",
		slog.Int64("job", job.ID),
		slog.String("webhook", job.Args.Webhook),
		slog.String("id", job.Args.EventID),
		slog.String("sink", job.Args.Sink),
		slog.Int("attempt", job.Attempt),
		slog.String("why", why),
		slog.String("error", clip(err.Error(), 1024)))
}

// loadEvent reads the body and received time of an accepted event.
func (q *Queue) loadEvent(ctx context.Context, webhook, id string) ([]byte, time.Time, error) {
	var body []byte
	var ms int64
	err := q.db.read.QueryRowContext(ctx,
		q.rebind("SELECT body, received_at FROM stairhook_events WHERE webhook = ? AND event_id = ?"),
		webhook, id).Scan(&body, &ms)
	return body, time.UnixMilli(ms), err
}

// clip cuts s to at most n bytes on a UTF-8 boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
