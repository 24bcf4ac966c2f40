package queue

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// DeadLetter is a job that will not run again unless replayed: a sink
// rejected the event, or it kept failing for GiveUpAfter.
type DeadLetter struct {
	// ID is the job's number, for Replay.
	ID int64 `json:"job"`
	// Time is when the job died.
	Time time.Time `json:"time"`
	// Webhook, EventID and Sink say what was to be delivered where.
	Webhook string `json:"webhook"`
	EventID string `json:"event_id"`
	Sink    string `json:"sink"`
	// Attempts counts the attempts made.
	Attempts int `json:"attempts"`
	// Error is the last attempt's error.
	Error string `json:"error"`
	// Body is the event as it was signed.
	Body json.RawMessage `json:"body"`
}

// deadStates are River's states of a job that will not run again by
// itself: cancelled (a permanent failure, or gave up) and discarded (out
// of attempts, or River's rescuer gave up on it).
var deadStates = []rivertype.JobState{rivertype.JobStateCancelled, rivertype.JobStateDiscarded}

// listPage is how many dead letters one query reads: listing streams, at
// this many jobs (and their bodies) in memory at a time.
const listPage = 100

// DeadLetters calls fn for each dead letter, oldest first, streaming from
// the database a page at a time, whatever their number. A webhook other
// than "" keeps only that webhook's. It stops at fn's first error and
// returns it.
func (q *Queue) DeadLetters(ctx context.Context, webhook string, fn func(*DeadLetter) error) error {
	p := river.NewJobListParams().Kinds(DeliveryArgs{}.Kind()).States(deadStates...).
		OrderBy(river.JobListOrderByID, river.SortOrderAsc).First(listPage)
	for {
		res, err := q.eng.list(ctx, p)
		if err != nil {
			return err
		}
		for _, job := range res.Jobs {
			d, err := q.deadLetter(ctx, job)
			if err != nil {
				return err
			}
			if webhook != "" && d.Webhook != webhook {
				continue
			}
			if err := fn(d); err != nil {
				return err
			}
		}
		if len(res.Jobs) < listPage {
			return nil
		}
		p = p.After(res.LastCursor)
	}
}

// jobMeta is what our jobs carry in River's metadata.
type jobMeta struct {
	// ImportedError and ImportedTime are the error and time of a dead
	// letter imported from an older version's file, which had no job to
	// hold them.
	ImportedError string    `json:"imported_error,omitempty"`
	ImportedTime  time.Time `json:"imported_time,omitzero"`
	// ReplayOf is the dead job a replay replaced.
	ReplayOf int64 `json:"replay_of,omitempty"`
	// Trace is the W3C traceparent of the event's accept (see
	// Accepted.Trace); a replay keeps it, so its attempts join the
	// event's trace.
	Trace string `json:"traceparent,omitempty"`
}

func (q *Queue) deadLetter(ctx context.Context, job *rivertype.JobRow) (*DeadLetter, error) {
	var a DeliveryArgs
	if err := json.Unmarshal(job.EncodedArgs, &a); err != nil {
		return nil, fmt.Errorf("queue: job %d: %w", job.ID, err)
	}
	d := &DeadLetter{ID: job.ID, Webhook: a.Webhook, EventID: a.EventID, Sink: a.Sink, Attempts: job.Attempt}
	if job.FinalizedAt != nil {
		d.Time = job.FinalizedAt.UTC()
	}
	if n := len(job.Errors); n > 0 {
		d.Error = job.Errors[n-1].Error
	}
	var m jobMeta
	if json.Unmarshal(job.Metadata, &m) == nil && m.ImportedError != "" {
		d.Error = m.ImportedError
		if !m.ImportedTime.IsZero() {
			d.Time = m.ImportedTime.UTC()
		}
	}
	body, _, err := q.loadEvent(ctx, a.Webhook, a.EventID)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	d.Body = body
	return d, nil
}

// Replay queues a dead letter again, as a new job in the old one's place,
// in one transaction: it gets a fresh GiveUpAfter, and its attempts start
// from one.
func (q *Queue) Replay(ctx context.Context, id int64) error {
	job, err := q.eng.get(ctx, id)
	if errors.Is(err, rivertype.ErrNotFound) {
		return fmt.Errorf("%w: no job %d", ErrNotDead, id)
	}
	if err != nil {
		return err
	}
	if job.Kind != (DeliveryArgs{}).Kind() || (job.State != rivertype.JobStateCancelled && job.State != rivertype.JobStateDiscarded) {
		return fmt.Errorf("%w: job %d is %s", ErrNotDead, id, job.State)
	}
	var a DeliveryArgs
	if err := json.Unmarshal(job.EncodedArgs, &a); err != nil {
		return fmt.Errorf("queue: job %d: %w", id, err)
	}
	var old jobMeta
	_ = json.Unmarshal(job.Metadata, &old)
	meta, _ := json.Marshal(jobMeta{ReplayOf: id, Trace: old.Trace})
	return q.eng.replace(ctx, id, river.InsertManyParams{
		Args:       a,
		InsertOpts: &river.InsertOpts{MaxAttempts: maxAttempts, Metadata: meta},
	})
}

// ReplayAll replays every dead letter (of webhook, unless it is ""),
// returning how many it queued again.
func (q *Queue) ReplayAll(ctx context.Context, webhook string) (int, error) {
	// Collect the ids first, a page at a time, then replay: replaying
	// while listing would list the replacements' future deaths again.
	var ids []int64
	err := q.DeadLetters(ctx, webhook, func(d *DeadLetter) error {
		ids = append(ids, d.ID)
		return nil
	})
	if err != nil {
		return 0, err
	}
	for i, id := range ids {
		if err := q.Replay(ctx, id); err != nil {
			return i, err
		}
	}
	return len(ids), nil
}

// Bury records a dead letter from an older version's dead-letter file:
// the event (unless already accepted) and a job that is dead from the
// start, which Replay queues as any other.
func (q *Queue) Bury(ctx context.Context, a *Accepted, died time.Time, errText string) error {
	if len(a.Sinks) != 1 {
		return errors.New("queue: Bury takes one sink")
	}
	meta, _ := json.Marshal(jobMeta{ImportedError: errText, ImportedTime: died})
	return q.eng.bury(ctx, a, died.UnixMilli(), river.InsertManyParams{
		Args:       DeliveryArgs{Webhook: a.Webhook, EventID: a.EventID, Sink: a.Sinks[0]},
		InsertOpts: &river.InsertOpts{MaxAttempts: maxAttempts, Metadata: meta},
	})
}
