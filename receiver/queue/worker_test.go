package queue_test

import (
	"context"
	"errors"
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
