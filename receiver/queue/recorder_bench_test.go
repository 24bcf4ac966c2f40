package queue_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/queue"
)

// BenchmarkRecorderCall measures what the accept path pays to record a
// refusal or a key use: an append to the buffer, under its lock, from
// many goroutines at once. The buffer is written every second meanwhile.
func BenchmarkRecorderCall(b *testing.B) {
	q, err := queue.Open(context.Background(), queue.Location{SQLitePath: filepath.Join(b.TempDir(), "stairhook.db")},
		queue.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	defer q.Close()
	rc := q.NewRecorder(queue.RecorderOptions{})
	defer rc.Close(context.Background())
	f := queue.Refusal{Remote: "192.0.2.1", Webhook: "w", Status: 401, Reason: "timestamp_too_old",
		Hint: "timestamp 312 s in the past", Headers: []string{"X-Staircase-Signature"}}
	b.Run("refused", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rc.Refused(f)
			}
		})
	})
	b.Run("key_used", func(b *testing.B) {
		now := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rc.KeyUsed("w", "current", now)
			}
		})
	})
}

// BenchmarkAcceptWithRecorder measures the accept path at concurrency 32
// on SQLite, side by side: without the console's two indexes (dropped
// after the migration: the cost of an index entry per event and per job),
// as migrated, and with a Recorder taking one key use per accepted event
// (as the receiver will; its flush shares the one writer with the
// commits once a second).
func BenchmarkAcceptWithRecorder(b *testing.B) {
	for _, variant := range []string{"without_console_indexes", "plain", "recorder"} {
		b.Run(variant, func(b *testing.B) {
			ctx := context.Background()
			path := filepath.Join(b.TempDir(), "stairhook.db")
			q, err := queue.Open(ctx, queue.Location{SQLitePath: path}, queue.Options{Logger: slog.New(slog.DiscardHandler)})
			require.NoError(b, err)
			defer q.Close()
			if variant == "without_console_indexes" {
				db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
				require.NoError(b, err)
				_, err = db.Exec("DROP INDEX stairhook_job_event; DROP INDEX stairhook_events_id")
				require.NoError(b, err)
				db.Close()
			}
			var rc *queue.Recorder
			if variant == "recorder" {
				rc = q.NewRecorder(queue.RecorderOptions{})
				defer rc.Close(ctx)
			}
			body := make([]byte, 1024)
			var seq atomic.Int64
			b.SetParallelism(16) // 32 goroutines on 2 cores
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := seq.Add(1)
					_, err := q.Accept(ctx, &queue.Accepted{Webhook: "w", EventID: fmt.Sprintf("e%d", n), Type: "t", Account: "a",
						KeyLabel: "current", Scheme: "v1", Body: body, Sinks: []string{"one", "two"}})
					if err != nil {
						b.Error(err)
						return
					}
					if rc != nil {
						rc.KeyUsed("w", "current", time.Now())
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}
