package queue_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/queue"
)

// Every attempt shows when it began and how long the sink took, whatever
// its outcome, without the WorkFunc noting anything: River alone knows the
// times of the last attempt only.
func TestWorkerNotesEveryAttempt(t *testing.T) {
	const took = 30 * time.Millisecond
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			work := func(_ context.Context, d *queue.Delivery) queue.Result {
				time.Sleep(took)
				switch {
				case d.Sink == "dead":
					return queue.Result{Err: errors.New("rejected"), Permanent: true}
				case d.Attempt < 3:
					return queue.Result{Err: errors.New("connection reset")}
				}
				return queue.Result{}
			}
			q := open(t, e.loc(t), queue.Options{Work: work, FirstRetry: 20 * time.Millisecond, MaxRetry: 20 * time.Millisecond})
			ctx := context.Background()
			before := time.Now()
			_, err := q.Accept(ctx, accepted("e1", "flaky", "dead"))
			require.NoError(t, err)
			start(t, q)
			var d *queue.EventDetail
			eventually(t, "flaky delivered and dead dead", func() bool {
				d, err = q.Event(ctx, "w", "e1")
				require.NoError(t, err)
				s := sinkStates(d.EventSummary)
				return s["flaky"] == queue.StateDelivered && s["dead"] == queue.StateDead
			})
			require.Len(t, d.Jobs, 2)
			for _, j := range d.Jobs {
				want := map[string]int{"flaky": 3, "dead": 1}[j.Sink]
				require.Len(t, j.Tries, want, j.Sink)
				var last time.Time
				for _, a := range j.Tries {
					assert.GreaterOrEqual(t, a.Took, took, "%s attempt %d", j.Sink, a.Number)
					assert.Less(t, a.Took, 10*time.Second, "%s attempt %d", j.Sink, a.Number)
					assert.True(t, a.Began.After(before) && a.Began.After(last), "%s attempt %d began %v", j.Sink, a.Number, a.Began)
					last = a.Began.Add(a.Took)
				}
			}
		})
	}
}

// The traceparent an event was accepted under reaches every attempt of
// each of its jobs, a replay's included; an event accepted without one,
// or with one past the bound, gives its attempts none.
func TestWorkerPassesTheTrace(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			traces := map[string][]string{} // by event/sink, one per attempt
			var fixed atomic.Bool
			work := func(_ context.Context, d *queue.Delivery) queue.Result {
				mu.Lock()
				defer mu.Unlock()
				key := d.EventID + "/" + d.Sink
				traces[key] = append(traces[key], d.Trace)
				switch {
				case d.Sink == "dead" && !fixed.Load():
					return queue.Result{Err: errors.New("rejected"), Permanent: true}
				case d.Sink == "flaky" && d.Attempt < 2:
					return queue.Result{Err: errors.New("connection reset")}
				}
				return queue.Result{}
			}
			seen := func(key string) []string {
				mu.Lock()
				defer mu.Unlock()
				return slices.Clone(traces[key])
			}
			q := open(t, e.loc(t), queue.Options{Work: work, FirstRetry: 20 * time.Millisecond, MaxRetry: 20 * time.Millisecond})
			ctx := context.Background()
			a := accepted("e1", "flaky", "dead")
			a.Trace = tp
			_, err := q.Accept(ctx, a)
			require.NoError(t, err)
			_, err = q.Accept(ctx, accepted("e2", "flaky"))
			require.NoError(t, err)
			long := accepted("e3", "s")
			long.Trace = "00-" + strings.Repeat("a", 300)
			_, err = q.Accept(ctx, long)
			require.NoError(t, err)
			start(t, q)
			eventually(t, "every attempt", func() bool {
				return len(seen("e1/flaky")) == 2 && len(seen("e1/dead")) == 1 && len(seen("e2/flaky")) == 2 && len(seen("e3/s")) == 1
			})
			assert.Equal(t, []string{tp, tp}, seen("e1/flaky"))
			assert.Equal(t, []string{tp}, seen("e1/dead"))
			assert.Equal(t, []string{"", ""}, seen("e2/flaky"))
			assert.Equal(t, []string{""}, seen("e3/s"))

			dead := deadLetters(t, q, "")
			require.Len(t, dead, 1)
			fixed.Store(true)
			require.NoError(t, q.Replay(ctx, dead[0].ID))
			eventually(t, "the replay", func() bool { return len(seen("e1/dead")) == 2 })
			assert.Equal(t, []string{tp, tp}, seen("e1/dead"), "a replay joins the event's trace")
		})
	}
}
