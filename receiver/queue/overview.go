package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// maxLastErrors bounds LastErrors.
const maxLastErrors = 100

// Depth is the queue's state now: its jobs by sink state (delivered jobs
// are left out: River deletes them a day after they succeed), and how long
// the oldest job still to deliver has waited.
type Depth struct {
	// Jobs counts the jobs by state: queued, running, retrying, waiting,
	// dead.
	Jobs map[SinkState]int64 `json:"jobs"`
	// OldestPending is when the oldest job still to deliver was queued
	// (or replayed); zero when there is none.
	OldestPending time.Time `json:"oldest_pending,omitzero"`
}

// Depth counts the jobs by state and finds the oldest pending one.
func (q *Queue) Depth(ctx context.Context) (*Depth, error) {
	states := append(append([]rivertype.JobState{}, pendingStates...), deadStates...)
	in, args := statesIn(states)
	// Every River job of the database is a delivery job: no condition on
	// the kind, which would read each job's row rather than the index of
	// states alone.
	rows, err := q.db.read.QueryContext(ctx, q.rebind(`SELECT state, count(*) FROM river_job
WHERE state IN (`+in+`) GROUP BY state`), args...)
	if err != nil {
		return nil, fmt.Errorf("queue: depth: %w", err)
	}
	d := &Depth{Jobs: map[SinkState]int64{}}
	for _, s := range SinkStates() {
		if s != StateDelivered {
			d.Jobs[s] = 0
		}
	}
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("queue: depth: %w", err)
		}
		d.Jobs[stateOf(rivertype.JobState(state))] += n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue: depth: %w", err)
	}
	// Job numbers grow with time: the lowest pending is the oldest.
	in, args = statesIn(pendingStates)
	var oldest *int64
	err = q.db.read.QueryRowContext(ctx, q.rebind(`SELECT min(id) FROM river_job WHERE state IN (`+in+`)`), args...).Scan(&oldest)
	if err != nil {
		return nil, fmt.Errorf("queue: depth: %w", err)
	}
	if oldest != nil {
		job, err := q.eng.get(ctx, *oldest)
		if err == nil {
			d.OldestPending = job.CreatedAt.UTC()
		} else if !errors.Is(err, rivertype.ErrNotFound) { // delivered in between: no matter
			return nil, fmt.Errorf("queue: depth: %w", err)
		}
	}
	return d, nil
}

// Window counts what happened in a span of time up to now.
type Window struct {
	// Span is the window's length.
	Span time.Duration `json:"span_ns"`
	// Accepted counts the events accepted; Delivered and Dead the jobs
	// that ended so; Refused the requests refused.
	Accepted  int64 `json:"accepted"`
	Delivered int64 `json:"delivered"`
	Dead      int64 `json:"dead"`
	Refused   int64 `json:"refused"`
}

// WebhookCounts is what one webhook accepted and had refused.
type WebhookCounts struct {
	Webhook      string `json:"webhook"`
	AcceptedHour int64  `json:"accepted_hour"`
	AcceptedDay  int64  `json:"accepted_day"`
	RefusedDay   int64  `json:"refused_day"`
}

// Overview is the console's first page: recent activity, the queue, and
// the refused requests by reason.
type Overview struct {
	// Now is when it was computed.
	Now time.Time `json:"now"`
	// Hour and Day are the last hour and the last 24 hours.
	Hour Window `json:"hour"`
	Day  Window `json:"day"`
	// Depth is the queue now.
	Depth Depth `json:"depth"`
	// Webhooks are the counts of each webhook that accepted or had refused
	// a request in the last day.
	Webhooks []WebhookCounts `json:"webhooks"`
	// Refused counts the last day's refused requests by webhook and reason.
	Refused []RefusedCount `json:"refused"`
}

// Overview computes the overview now.
func (q *Queue) Overview(ctx context.Context) (*Overview, error) {
	now := q.opts.Now()
	o := &Overview{Now: now.UTC(), Hour: Window{Span: time.Hour}, Day: Window{Span: 24 * time.Hour}}
	d, err := q.Depth(ctx)
	if err != nil {
		return nil, err
	}
	o.Depth = *d
	byWebhook := map[string]*WebhookCounts{}
	counts := func(w string) *WebhookCounts {
		c := byWebhook[w]
		if c == nil {
			c = &WebhookCounts{Webhook: w}
			byWebhook[w] = c
		}
		return c
	}
	hour, day := now.Add(-time.Hour), now.Add(-24*time.Hour)
	rows, err := q.db.read.QueryContext(ctx, q.rebind(`SELECT webhook,
	CAST(sum(CASE WHEN received_at >= ? THEN 1 ELSE 0 END) AS BIGINT), count(*)
FROM stairhook_events WHERE received_at >= ? GROUP BY webhook ORDER BY webhook`), hour.UnixMilli(), day.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("queue: overview: %w", err)
	}
	for rows.Next() {
		var w string
		var h, dd int64
		if err := rows.Scan(&w, &h, &dd); err != nil {
			rows.Close()
			return nil, fmt.Errorf("queue: overview: %w", err)
		}
		c := counts(w)
		c.AcceptedHour, c.AcceptedDay = h, dd
		o.Hour.Accepted += h
		o.Day.Accepted += dd
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue: overview: %w", err)
	}
	if o.Refused, err = q.RefusedSince(ctx, day); err != nil {
		return nil, err
	}
	for _, r := range o.Refused {
		counts(r.Webhook).RefusedDay += r.Count
		o.Day.Refused += r.Count
	}
	if o.Hour.Refused, err = q.count(ctx, "SELECT count(*) FROM stairhook_refused WHERE at >= ?", hour.UnixMilli()); err != nil {
		return nil, err
	}
	for _, w := range []*Window{&o.Hour, &o.Day} {
		since := q.jobTime(now.Add(-w.Span))
		if w.Delivered, err = q.count(ctx, "SELECT count(*) FROM river_job WHERE state = ? AND finalized_at >= ?",
			string(rivertype.JobStateCompleted), since); err != nil {
			return nil, err
		}
		if w.Dead, err = q.count(ctx, "SELECT count(*) FROM river_job WHERE state IN (?, ?) AND finalized_at >= ?",
			string(rivertype.JobStateCancelled), string(rivertype.JobStateDiscarded), since); err != nil {
			return nil, err
		}
	}
	// In the order of the webhooks' names.
	for _, w := range slices.Sorted(maps.Keys(byWebhook)) {
		o.Webhooks = append(o.Webhooks, *byWebhook[w])
	}
	return o, nil
}

func (q *Queue) count(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	if err := q.db.read.QueryRowContext(ctx, q.rebind(query), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("queue: count: %w", err)
	}
	return n, nil
}

// FailedJob is a job whose last attempt failed: retrying, waiting or
// dead.
type FailedJob struct {
	ID      int64     `json:"job"`
	Webhook string    `json:"webhook"`
	EventID string    `json:"event_id"`
	Sink    string    `json:"sink"`
	State   SinkState `json:"state"`
	// At is when the last attempt failed; Error its error, clipped.
	At    time.Time `json:"at"`
	Error string    `json:"error"`
}

// LastErrors returns up to n (at most 100) of the most recently queued
// jobs whose last attempt failed, newest first.
func (q *Queue) LastErrors(ctx context.Context, n int) ([]FailedJob, error) {
	n = clampPage(n, maxLastErrors)
	p := river.NewJobListParams().Kinds(DeliveryArgs{}.Kind()).
		States(rivertype.JobStateRetryable, rivertype.JobStateScheduled, rivertype.JobStateCancelled, rivertype.JobStateDiscarded).
		OrderBy(river.JobListOrderByID, river.SortOrderDesc).First(n)
	res, err := q.eng.list(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("queue: last errors: %w", err)
	}
	var out []FailedJob
	for _, row := range res.Jobs {
		j, err := jobDetail(row)
		if err != nil {
			return nil, err
		}
		var a DeliveryArgs
		_ = json.Unmarshal(row.EncodedArgs, &a)
		f := FailedJob{ID: row.ID, Webhook: a.Webhook, EventID: a.EventID, Sink: a.Sink, State: j.State}
		for i := len(j.Tries) - 1; i >= 0; i-- {
			if j.Tries[i].Error != "" {
				f.At, f.Error = j.Tries[i].Began, j.Tries[i].Error
				break
			}
		}
		if f.Error == "" {
			continue // snoozed without an error, or no record of it
		}
		out = append(out, f)
	}
	return out, nil
}
