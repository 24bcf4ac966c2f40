package queue_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/queue"
)

// BenchmarkWork measures the work path alone: b.N events of two jobs each
// are queued first, then one process's workers (the default 8, polling
// every 50 ms on SQLite; Postgres notifies) deliver them to a sink that
// succeeds at once. It reports jobs/s, the rate at which one instance
// drains a backlog.
func BenchmarkWork(b *testing.B) {
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			loc := e.loc(b)
			ctx := context.Background()
			var done atomic.Int64
			q, err := queue.Open(ctx, loc, queue.Options{
				Logger: slog.New(slog.DiscardHandler),
				Work: func(context.Context, *queue.Delivery) queue.Result {
					done.Add(1)
					return queue.Result{}
				},
			})
			require.NoError(b, err)
			defer q.Close()
			body := make([]byte, 1024)
			for i := range b.N {
				_, err := q.Accept(ctx, &queue.Accepted{Webhook: "w", EventID: fmt.Sprintf("e%d", i), Type: "t", Account: "a",
					KeyLabel: "k", Scheme: "v1", Body: body, Sinks: []string{"one", "two"}})
				require.NoError(b, err)
			}
			b.ResetTimer()
			start := time.Now()
			require.NoError(b, q.Start(ctx))
			for done.Load() < int64(2*b.N) {
				time.Sleep(time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			q.Stop(sctx)
			b.ReportMetric(float64(2*b.N)/elapsed.Seconds(), "jobs/s")
		})
	}
}
