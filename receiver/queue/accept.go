package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/riverqueue/river"
)

// maxBatch bounds the events one commit records: enough to take a burst
// of concurrent requests in one sync to disk, small enough that a batch's
// transaction stays short.
const maxBatch = 64

// pending is one Accept waiting for its commit.
type pending struct {
	a        *Accepted
	received int64
	jobs     []river.InsertManyParams
	done     chan result // buffered: the committer never waits for the caller
}

type result struct {
	duplicate bool
	err       error
}

// batcher commits the events of concurrent Accept calls together (group
// commit): a committer takes the first waiting event, then whatever else
// is already waiting, up to maxBatch, and records them all in one
// transaction. A lone event waits for nothing; under load, one sync to
// disk serves many events. That is what makes the accept path keep up
// with the database's commit rate: each commit costs a sync, and an event
// of its own would cost one.
type batcher struct {
	in   chan *pending
	stop chan struct{}
	wg   sync.WaitGroup
}

// startBatcher starts n committers for q (one for SQLite, which has one
// writer; a few for Postgres, whose commits overlap).
func (q *Queue) startBatcher(n int) {
	b := &batcher{in: make(chan *pending), stop: make(chan struct{})}
	for range n {
		b.wg.Go(func() { q.commitLoop(b) })
	}
	q.batch = b
}

func (q *Queue) stopBatcher() {
	if q.batch != nil {
		close(q.batch.stop)
		q.batch.wg.Wait()
	}
}

func (q *Queue) commitLoop(b *batcher) {
	batch := make([]*pending, 0, maxBatch)
	for {
		select {
		case p := <-b.in:
			batch = append(batch[:0], p)
		case <-b.stop:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case p := <-b.in:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		q.commit(batch)
	}
}

// commit records batch in one transaction. If that fails, each event is
// tried in a transaction of its own, so one event the database refuses
// cannot fail the others with it.
func (q *Queue) commit(batch []*pending) {
	// Detached from the callers: one caller giving up must not abort the
	// others' transaction. Bounded all the same.
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	dups, err := q.eng.acceptBatch(ctx, batch)
	if err == nil {
		for i, p := range batch {
			p.done <- result{duplicate: dups[i]}
		}
		return
	}
	if len(batch) == 1 {
		batch[0].done <- result{err: err}
		return
	}
	for _, p := range batch {
		dups, err := q.eng.acceptBatch(ctx, []*pending{p})
		if err != nil {
			p.done <- result{err: err}
			continue
		}
		p.done <- result{duplicate: dups[0]}
	}
}

// Accept records the event and queues one job per sink, in one
// transaction (shared with the events of concurrent calls): when it
// returns nil the event is durable. duplicate is true when the event (by
// webhook and id) was accepted before; nothing is written for it then. Any
// failure wraps ErrUnavailable, and nothing is written for the event. When
// ctx ends first, Accept returns its error while the commit may still
// succeed: the event is then accepted, and the sender's retry is a
// duplicate.
func (q *Queue) Accept(ctx context.Context, a *Accepted) (duplicate bool, err error) {
	p := &pending{a: a, received: q.opts.Now().UnixMilli(), done: make(chan result, 1)}
	p.jobs = make([]river.InsertManyParams, len(a.Sinks))
	opts := &river.InsertOpts{MaxAttempts: maxAttempts} // River only reads them
	if a.Trace != "" && len(a.Trace) <= maxTraceparent {
		opts.Metadata, _ = json.Marshal(jobMeta{Trace: a.Trace})
	}
	for i, s := range a.Sinks {
		p.jobs[i] = river.InsertManyParams{
			Args:       DeliveryArgs{Webhook: a.Webhook, EventID: a.EventID, Sink: s},
			InsertOpts: opts,
		}
	}
	select {
	case q.batch.in <- p:
	case <-q.batch.stop:
		return false, fmt.Errorf("%w: the queue is closed", ErrUnavailable)
	case <-ctx.Done():
		return false, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	select {
	case r := <-p.done:
		if r.err != nil {
			return false, fmt.Errorf("%w: %w", ErrUnavailable, r.err)
		}
		return r.duplicate, nil
	case <-ctx.Done():
		return false, fmt.Errorf("%w: %w (the commit may still succeed)", ErrUnavailable, ctx.Err())
	}
}

// errNoBatch guards the engines' acceptBatch against an empty batch.
var errNoBatch = errors.New("queue: empty batch")

func (e *riverEngine[TTx]) acceptBatch(ctx context.Context, batch []*pending) ([]bool, error) {
	if len(batch) == 0 {
		return nil, errNoBatch
	}
	// One statement for the batch's events; a second copy of an event in
	// the batch is a duplicate of the first without asking the database.
	dups := make([]bool, len(batch))
	first := make(map[eventKey]int, len(batch))
	var rows []*pending
	for i, p := range batch {
		k := eventKey{p.a.Webhook, p.a.EventID}
		if _, seen := first[k]; seen {
			dups[i] = true
			continue
		}
		first[k] = i
		rows = append(rows, p)
	}
	tx, err := e.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer e.rollback(context.WithoutCancel(ctx), tx)
	args := make([]any, 0, len(rows)*eventColumns)
	for _, p := range rows {
		args = append(args, eventArgs(p.a, p.received)...)
	}
	inserted, err := e.query(ctx, tx, e.q.insertEvents(len(rows)), args...)
	if err != nil {
		return nil, err
	}
	isNew := make(map[eventKey]bool, len(inserted))
	for _, k := range inserted {
		isNew[k] = true
	}
	var jobs []river.InsertManyParams
	for _, p := range rows {
		k := eventKey{p.a.Webhook, p.a.EventID}
		if isNew[k] {
			jobs = append(jobs, p.jobs...)
		} else {
			dups[first[k]] = true
		}
	}
	if len(jobs) > 0 {
		if _, err := e.client.InsertManyFastTx(ctx, tx, jobs); err != nil {
			return nil, err
		}
	}
	if err := e.commit(ctx, tx); err != nil {
		return nil, err
	}
	return dups, nil
}

// eventKey identifies an event: its webhook and id.
type eventKey struct{ webhook, id string }
