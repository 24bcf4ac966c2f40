package queue_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/queue"
)

// outcomes is a WorkFunc by sink name: "ok" succeeds, "dead" fails
// permanently, "slow" fails transiently (its next attempt is an hour
// away), "flaky" fails twice then succeeds.
func outcomes(d *queue.Delivery) queue.Result {
	switch d.Sink {
	case "dead":
		return queue.Result{Err: errors.New("jira 400: no such project"), Permanent: true}
	case "slow":
		return queue.Result{Err: errors.New("503 from the destination")}
	case "flaky":
		if d.Attempt < 3 {
			return queue.Result{Err: fmt.Errorf("attempt %d: connection reset", d.Attempt)}
		}
	}
	return queue.Result{}
}

func sinkStates(e queue.EventSummary) map[string]queue.SinkState {
	out := map[string]queue.SinkState{}
	for _, s := range e.Sinks {
		out[s.Sink] = s.State
	}
	return out
}

func eventIDs(es []queue.EventSummary) []string {
	var ids []string
	for _, e := range es {
		ids = append(ids, e.EventID)
	}
	return ids
}

func TestEventsFiltersStatesAndPages(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			var now atomic.Int64
			base := time.Now().Add(-time.Hour).Truncate(time.Second)
			now.Store(base.UnixMilli())
			clock := func() time.Time { return time.UnixMilli(now.Load()) }
			rec := newRecorder(outcomes)
			q := open(t, e.loc(t), queue.Options{Work: rec.work, Now: clock, FirstRetry: time.Hour, MaxRetry: time.Hour})
			ctx := context.Background()
			add := func(webhook, id, typ, account string, sinks ...string) {
				t.Helper()
				a := accepted(id, sinks...)
				a.Webhook, a.Type, a.Account = webhook, typ, account
				_, err := q.Accept(ctx, a)
				require.NoError(t, err)
				now.Add(1000)
			}
			add("w", "e1", "churn_risk", "acc_1", "ok")
			add("w", "e2", "renewal", "acc_2", "ok", "dead")
			add("x", "e3", "churn_risk", "acc_1", "slow")
			add("x", "e4", "renewal", "acc_3")
			add("w", "e5", "churn_risk", "acc_2", "ok", "slow")
			start(t, q)
			eventually(t, "every first attempt", func() bool {
				return rec.count("e1/ok") == 1 && rec.count("e2/dead") == 1 && rec.count("x:e3/slow") == 1 && rec.count("e5/slow") == 1 && rec.count("e5/ok") == 1
			})
			list := func(f queue.EventFilter) []string {
				t.Helper()
				l, err := q.Events(ctx, f, 0)
				require.NoError(t, err)
				return eventIDs(l.Events)
			}
			eventually(t, "the jobs recorded", func() bool {
				return len(list(queue.EventFilter{State: queue.StateDelivered})) == 2 &&
					len(list(queue.EventFilter{State: queue.StateDead})) == 1 &&
					len(list(queue.EventFilter{State: queue.StateRetrying})) == 2
			})

			assert.Equal(t, []string{"e5", "e4", "e3", "e2", "e1"}, list(queue.EventFilter{}), "newest first")
			assert.Equal(t, []string{"e5", "e2", "e1"}, list(queue.EventFilter{Webhook: "w"}))
			assert.Equal(t, []string{"e5", "e3", "e1"}, list(queue.EventFilter{Type: "churn_risk"}))
			assert.Equal(t, []string{"e5", "e2"}, list(queue.EventFilter{Account: "acc_2"}))
			assert.Equal(t, []string{"e3"}, list(queue.EventFilter{EventID: "e3"}))
			assert.Equal(t, []string{"e4", "e3"}, list(queue.EventFilter{Since: base.Add(2 * time.Second), Until: base.Add(4 * time.Second)}))
			assert.Equal(t, []string{"e4", "e1"}, list(queue.EventFilter{State: queue.StateDelivered}),
				"every sink delivered, or none to deliver (e4)")
			assert.Equal(t, []string{"e2"}, list(queue.EventFilter{State: queue.StateDead}))
			assert.Equal(t, []string{"e5", "e3"}, list(queue.EventFilter{State: queue.StateRetrying}))
			assert.Empty(t, list(queue.EventFilter{State: queue.StateRetrying, Webhook: "w", Type: "renewal"}))

			l, err := q.Events(ctx, queue.EventFilter{EventID: "e2"}, 0)
			require.NoError(t, err)
			require.Len(t, l.Events, 1)
			assert.Equal(t, map[string]queue.SinkState{"ok": queue.StateDelivered, "dead": queue.StateDead}, sinkStates(l.Events[0]))
			assert.Equal(t, "k", l.Events[0].KeyLabel)
			assert.Equal(t, base.Add(time.Second).UTC(), l.Events[0].ReceivedAt)

			// Pages of two, each once, in order.
			var got []string
			f := queue.EventFilter{}
			for range 10 {
				l, err := q.Events(ctx, f, 2)
				require.NoError(t, err)
				assert.LessOrEqual(t, len(l.Events), 2)
				got = append(got, eventIDs(l.Events)...)
				if l.Next == "" {
					break
				}
				f.Cursor = l.Next
			}
			assert.Equal(t, []string{"e5", "e4", "e3", "e2", "e1"}, got)

			_, err = q.Events(ctx, queue.EventFilter{Cursor: "not a cursor"}, 0)
			assert.ErrorIs(t, err, queue.ErrBadCursor)
			_, err = q.Events(ctx, queue.EventFilter{State: "lost"}, 0)
			assert.ErrorIs(t, err, queue.ErrBadState)

			webhooks, err := q.FindEvent(ctx, "e3")
			require.NoError(t, err)
			assert.Equal(t, []string{"x"}, webhooks)
		})
	}
}

// A page never holds more than EventsPage events, whatever is asked.
func TestEventsPageBound(t *testing.T) {
	q := open(t, engines[0].loc(t), queue.Options{})
	ctx := context.Background()
	for i := range queue.EventsPage + 1 {
		_, err := q.Accept(ctx, accepted(fmt.Sprintf("e%03d", i)))
		require.NoError(t, err)
	}
	l, err := q.Events(ctx, queue.EventFilter{}, queue.EventsPage+1)
	require.NoError(t, err)
	assert.Len(t, l.Events, queue.EventsPage)
	require.NotEmpty(t, l.Next)
	l, err = q.Events(ctx, queue.EventFilter{Cursor: l.Next}, 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"e000"}, eventIDs(l.Events))
	assert.Empty(t, l.Next)
}

func TestEventDetailAttemptsAndReceipt(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			work := func(ctx context.Context, d *queue.Delivery) queue.Result {
				began := time.Now()
				res := outcomes(d)
				if d.Sink == "flaky" {
					time.Sleep(20 * time.Millisecond)
					require.NoError(t, queue.NoteAttempt(ctx, d.Attempt, began, time.Since(began)))
					if res.Err == nil {
						require.NoError(t, queue.NoteReceipt(ctx, "jira_issue", "CS-42"))
						assert.ErrorIs(t, queue.NoteReceipt(ctx, "Bad Key", "x"), queue.ErrBadReceipt)
					}
				}
				return res
			}
			q := open(t, e.loc(t), queue.Options{Work: work, FirstRetry: 50 * time.Millisecond, MaxRetry: 50 * time.Millisecond})
			ctx := context.Background()
			_, err := q.Accept(ctx, accepted("e1", "flaky", "dead", "ok"))
			require.NoError(t, err)
			start(t, q)
			var d *queue.EventDetail
			eventually(t, "flaky delivered and dead dead", func() bool {
				d, err = q.Event(ctx, "w", "e1")
				require.NoError(t, err)
				s := sinkStates(d.EventSummary)
				return s["flaky"] == queue.StateDelivered && s["dead"] == queue.StateDead && s["ok"] == queue.StateDelivered
			})
			assert.JSONEq(t, `{"id":"e1"}`, string(d.Body))
			assert.Equal(t, []string{"flaky", "dead", "ok"}, []string{d.Sinks[0].Sink, d.Sinks[1].Sink, d.Sinks[2].Sink}, "in the event's order")
			require.Len(t, d.Jobs, 3)
			flaky := d.Jobs[0]
			assert.Equal(t, "flaky", flaky.Sink)
			assert.Equal(t, 3, flaky.Attempts)
			require.Len(t, flaky.Tries, 3)
			for i, a := range flaky.Tries {
				assert.Equal(t, i+1, a.Number)
				assert.False(t, a.Began.IsZero())
				assert.GreaterOrEqual(t, a.Took, 20*time.Millisecond, "the noted duration of attempt %d", a.Number)
			}
			assert.Contains(t, flaky.Tries[0].Error, "attempt 1: connection reset")
			assert.Contains(t, flaky.Tries[1].Error, "attempt 2")
			assert.Empty(t, flaky.Tries[2].Error, "the last attempt succeeded")
			assert.Equal(t, map[string]string{"jira_issue": "CS-42"}, flaky.Receipt)
			require.NotNil(t, flaky.Finished)

			dead := d.Jobs[1]
			assert.Equal(t, queue.StateDead, dead.State)
			require.Len(t, dead.Tries, 1)
			assert.Contains(t, dead.Tries[0].Error, "jira 400")
			assert.GreaterOrEqual(t, dead.Tries[0].Took, time.Duration(0), "from River's own times, without a note")
			assert.Empty(t, dead.Receipt)

			_, err = q.Event(ctx, "w", "nope")
			assert.ErrorIs(t, err, queue.ErrNoEvent)
			_, err = q.Event(ctx, "other", "e1")
			assert.ErrorIs(t, err, queue.ErrNoEvent, "ids are per webhook")
			assert.ErrorIs(t, queue.NoteAttempt(ctx, 1, time.Now(), time.Second), queue.ErrNotInWorker)
		})
	}
}

func TestRetryNow(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			var fixed atomic.Bool
			rec := newRecorder(func(d *queue.Delivery) queue.Result {
				if d.Sink == "slow" && fixed.Load() {
					return queue.Result{}
				}
				return outcomes(d)
			})
			q := open(t, e.loc(t), queue.Options{Work: rec.work, FirstRetry: time.Hour, MaxRetry: time.Hour})
			ctx := context.Background()
			_, err := q.Accept(ctx, accepted("e1", "slow", "ok", "dead"))
			require.NoError(t, err)
			start(t, q)
			var d *queue.EventDetail
			eventually(t, "slow retrying, the others done", func() bool {
				d, err = q.Event(ctx, "w", "e1")
				require.NoError(t, err)
				s := sinkStates(d.EventSummary)
				return s["slow"] == queue.StateRetrying && s["ok"] == queue.StateDelivered && s["dead"] == queue.StateDead
			})
			jobs := map[string]int64{}
			for _, j := range d.Jobs {
				jobs[j.Sink] = j.ID
			}
			assert.ErrorIs(t, q.RetryNow(ctx, jobs["ok"]), queue.ErrNotWaiting, "a delivered job is never queued again")
			assert.ErrorIs(t, q.RetryNow(ctx, jobs["dead"]), queue.ErrNotWaiting, "a dead letter is replayed, not retried")
			assert.ErrorIs(t, q.RetryNow(ctx, 1<<40), queue.ErrNotWaiting)

			fixed.Store(true)
			require.NoError(t, q.RetryNow(ctx, jobs["slow"]))
			eventually(t, "the retry, long before its hour", func() bool { return rec.count("e1/slow") == 2 })
			eventually(t, "slow delivered", func() bool {
				d, err = q.Event(ctx, "w", "e1")
				require.NoError(t, err)
				return sinkStates(d.EventSummary)["slow"] == queue.StateDelivered
			})
			assert.Equal(t, 1, rec.count("e1/ok"))
		})
	}
}

func TestDeadPagesAndReplayDead(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			var fixed atomic.Bool
			rec := newRecorder(func(d *queue.Delivery) queue.Result {
				if fixed.Load() {
					return queue.Result{}
				}
				return queue.Result{Err: errors.New("rejected " + d.Sink), Permanent: true}
			})
			q := open(t, e.loc(t), queue.Options{Work: rec.work})
			ctx := context.Background()
			for i := range 5 {
				a := accepted(fmt.Sprintf("e%d", i), "a", "b")
				if i%2 == 1 {
					a.Webhook = "x"
				}
				_, err := q.Accept(ctx, a)
				require.NoError(t, err)
			}
			start(t, q)
			eventually(t, "ten dead letters", func() bool {
				ds, err := q.Dead(ctx, queue.DeadFilter{}, 0)
				require.NoError(t, err)
				return len(ds) == 10
			})
			ds, err := q.Dead(ctx, queue.DeadFilter{Webhook: "x", Sink: "b"}, 0)
			require.NoError(t, err)
			require.Len(t, ds, 2)
			for _, d := range ds {
				assert.Equal(t, "x", d.Webhook)
				assert.Equal(t, "b", d.Sink)
				assert.Equal(t, "rejected b", d.Error)
				assert.Nil(t, d.Body, "a page carries no bodies")
				assert.False(t, d.Time.IsZero())
			}
			assert.Greater(t, ds[0].ID, ds[1].ID, "newest first")

			// Pages of three, each job once.
			seen := map[int64]bool{}
			f := queue.DeadFilter{}
			for {
				page, err := q.Dead(ctx, f, 3)
				require.NoError(t, err)
				for _, d := range page {
					assert.False(t, seen[d.ID])
					seen[d.ID] = true
				}
				if len(page) < 3 {
					break
				}
				f.Before = page[len(page)-1].ID
			}
			assert.Len(t, seen, 10)

			fixed.Store(true)
			n, err := q.ReplayDead(ctx, queue.DeadFilter{Sink: "a"})
			require.NoError(t, err)
			assert.Equal(t, 5, n)
			eventually(t, "the replays delivered", func() bool {
				for i := range 5 {
					key := fmt.Sprintf("e%d/a", i)
					if i%2 == 1 {
						key = "x:" + key
					}
					if rec.count(key) != 2 {
						return false
					}
				}
				return true
			})
			left, err := q.Dead(ctx, queue.DeadFilter{}, 0)
			require.NoError(t, err)
			assert.Len(t, left, 5)
			for _, d := range left {
				assert.Equal(t, "b", d.Sink, "only the matching dead letters were replayed")
			}
		})
	}
}

func TestOverviewDepthAndLastErrors(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(outcomes)
			q := open(t, e.loc(t), queue.Options{Work: rec.work, FirstRetry: time.Hour, MaxRetry: time.Hour})
			ctx := context.Background()

			d, err := q.Depth(ctx)
			require.NoError(t, err)
			assert.True(t, d.OldestPending.IsZero())
			assert.Zero(t, d.Jobs[queue.StateQueued])

			before := time.Now().Add(-time.Second)
			_, err = q.Accept(ctx, accepted("e1", "ok", "dead", "slow"))
			require.NoError(t, err)
			other := accepted("e2", "ok")
			other.Webhook = "x"
			_, err = q.Accept(ctx, other)
			require.NoError(t, err)
			d, err = q.Depth(ctx)
			require.NoError(t, err)
			assert.Equal(t, int64(4), d.Jobs[queue.StateQueued])
			assert.True(t, d.OldestPending.After(before), "the oldest pending job's time")

			rc := q.NewRecorder(queue.RecorderOptions{})
			rc.Refused(queue.Refusal{Webhook: "w", Status: 401, Reason: "timestamp_too_new"})
			rc.Refused(queue.Refusal{Webhook: "w", Status: 401, Reason: "timestamp_too_new"})
			rc.Refused(queue.Refusal{Webhook: "x", Status: 401, Reason: "no_matching_signature", Time: time.Now().Add(-2 * time.Hour)})
			require.NoError(t, rc.Close(ctx))

			start(t, q)
			var o *queue.Overview
			eventually(t, "the jobs to settle", func() bool {
				o, err = q.Overview(ctx)
				require.NoError(t, err)
				return o.Day.Delivered == 2 && o.Day.Dead == 1 && o.Depth.Jobs[queue.StateRetrying] == 1
			})
			assert.Equal(t, int64(2), o.Hour.Accepted)
			assert.Equal(t, int64(2), o.Day.Accepted)
			assert.Equal(t, int64(2), o.Hour.Delivered)
			assert.Equal(t, int64(1), o.Hour.Dead)
			assert.Equal(t, int64(2), o.Hour.Refused)
			assert.Equal(t, int64(3), o.Day.Refused)
			assert.Equal(t, int64(1), o.Depth.Jobs[queue.StateDead])
			assert.Zero(t, o.Depth.Jobs[queue.StateQueued])
			assert.False(t, o.Depth.OldestPending.IsZero(), "the retrying job is pending")
			assert.Equal(t, []queue.WebhookCounts{
				{Webhook: "w", AcceptedHour: 1, AcceptedDay: 1, RefusedDay: 2},
				{Webhook: "x", AcceptedHour: 1, AcceptedDay: 1, RefusedDay: 1},
			}, o.Webhooks)
			assert.Equal(t, []queue.RefusedCount{
				{Webhook: "w", Reason: "timestamp_too_new", Count: 2},
				{Webhook: "x", Reason: "no_matching_signature", Count: 1},
			}, o.Refused)

			errs, err := q.LastErrors(ctx, 10)
			require.NoError(t, err)
			require.Len(t, errs, 2)
			assert.Equal(t, "slow", errs[0].Sink, "newest job first")
			assert.Equal(t, queue.StateRetrying, errs[0].State)
			assert.Contains(t, errs[0].Error, "503")
			assert.Equal(t, queue.StateDead, errs[1].State)
		})
	}
}

// The jobs of an event are found through the stairhook_job_event index,
// not by reading every job: the expression of the queries is the
// index's.
func TestEventJobsUseTheIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stairhook.db")
	open(t, queue.Location{SQLitePath: path}, queue.Options{})
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	for _, query := range []string{
		`SELECT j.id FROM river_job j WHERE json_extract(j.args, '$.event_id') IN ('a', 'b')`,
		`SELECT id FROM river_job WHERE json_extract(args, '$.event_id') = 'a' AND json_extract(args, '$.webhook') = 'w'`,
	} {
		rows, err := db.Query("EXPLAIN QUERY PLAN " + query)
		require.NoError(t, err)
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
			plan = append(plan, detail)
		}
		require.NoError(t, rows.Err())
		rows.Close()
		assert.Contains(t, strings.Join(plan, "; "), "stairhook_job_event", query)
	}
}
