package queue_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/queue"
)

func TestRecorderRefused(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			q := open(t, e.loc(t), queue.Options{})
			ctx := context.Background()
			rc := q.NewRecorder(queue.RecorderOptions{FlushEvery: time.Hour})
			t.Cleanup(func() { rc.Close(ctx) })

			r := httptest.NewRequest(http.MethodPost, "/webhooks/w", nil)
			r.RemoteAddr = "192.0.2.7:51234"
			r.Header.Set("X-Staircase-Signature", "v1,c2VjcmV0LXNpZ25hdHVyZS12YWx1ZQ==")
			r.Header.Set("x-staircase-timestamp", "1700000000")
			r.Header.Set("X-Evil", "v1,planted")
			f := queue.NewRefusal(r, "w", 401, "timestamp_too_old", "timestamp 312 s in the past")
			assert.Equal(t, []string{"X-Staircase-Timestamp", "X-Staircase-Signature"}, f.Headers, "names only, canonical, in a fixed order")
			rc.Refused(f)
			rc.Refused(queue.Refusal{Webhook: "x", Status: 400, Reason: "missing_signature",
				Headers: []string{"x-evil", "webhook-id"}, Remote: strings.Repeat("r", 500), Hint: strings.Repeat("h", 5000)})

			got, err := q.Refused(ctx, queue.RefusedFilter{}, 0)
			require.NoError(t, err)
			assert.Empty(t, got, "nothing is written before the flush")
			require.NoError(t, rc.Flush(ctx))
			got, err = q.Refused(ctx, queue.RefusedFilter{}, 0)
			require.NoError(t, err)
			require.Len(t, got, 2)
			assert.Equal(t, "x", got[0].Webhook, "newest first")
			assert.Equal(t, []string{"Webhook-Id"}, got[0].Headers, "a name that is not a signature header is never stored")
			assert.LessOrEqual(t, len(got[0].Remote), 64+3)
			assert.LessOrEqual(t, len(got[0].Hint), 256+3)
			w := got[1]
			assert.Equal(t, "192.0.2.7", w.Remote, "without the port")
			assert.Equal(t, 401, w.Status)
			assert.Equal(t, "timestamp_too_old", w.Reason)
			assert.Equal(t, "timestamp 312 s in the past", w.Hint)
			assert.WithinDuration(t, time.Now(), w.Time, time.Minute)
			assert.NotContains(t, fmt.Sprint(got), "c2VjcmV0", "no signature value")
			assert.NotContains(t, fmt.Sprint(got), "planted")

			only, err := q.Refused(ctx, queue.RefusedFilter{Webhook: "w", Reason: "timestamp_too_old"}, 0)
			require.NoError(t, err)
			assert.Len(t, only, 1)
			older, err := q.Refused(ctx, queue.RefusedFilter{Before: got[0].ID}, 0)
			require.NoError(t, err)
			assert.Equal(t, []int64{got[1].ID}, []int64{older[0].ID})
		})
	}
}

// The database keeps MaxRefused refused requests: one past it, the oldest
// goes.
func TestRecorderKeepsMaxRefused(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			q := open(t, e.loc(t), queue.Options{})
			ctx := context.Background()
			rc := q.NewRecorder(queue.RecorderOptions{FlushEvery: time.Hour, Buffer: queue.MaxRefused + 1})
			t.Cleanup(func() { rc.Close(ctx) })
			for i := range queue.MaxRefused + 1 {
				rc.Refused(queue.Refusal{Webhook: "w", Status: 401, Reason: "r", Hint: fmt.Sprint(i)})
			}
			require.NoError(t, rc.Flush(ctx))
			var total int
			var oldest string
			f := queue.RefusedFilter{}
			for {
				page, err := q.Refused(ctx, f, 0)
				require.NoError(t, err)
				assert.LessOrEqual(t, len(page), queue.RefusedPage)
				total += len(page)
				if len(page) == 0 {
					break
				}
				oldest = page[len(page)-1].Hint
				f.Before = page[len(page)-1].ID
			}
			assert.Equal(t, queue.MaxRefused, total)
			assert.Equal(t, "1", oldest, "the first one recorded is gone")
		})
	}
}

// A full buffer drops and counts; Refused and KeyUsed never wait.
func TestRecorderBufferBound(t *testing.T) {
	q := open(t, engines[0].loc(t), queue.Options{})
	ctx := context.Background()
	rc := q.NewRecorder(queue.RecorderOptions{FlushEvery: time.Hour, Buffer: 2})
	for range 3 {
		rc.Refused(queue.Refusal{Webhook: "w"})
	}
	now := time.Now()
	rc.KeyUsed("w", "a", now)
	rc.KeyUsed("w", "b", now)
	rc.KeyUsed("w", "a", now) // an existing count: no room needed
	rc.KeyUsed("w", "c", now)
	refusals, uses := rc.Dropped()
	assert.Equal(t, uint64(1), refusals)
	assert.Equal(t, uint64(1), uses)
	require.NoError(t, rc.Close(ctx))
	got, err := q.Refused(ctx, queue.RefusedFilter{}, 0)
	require.NoError(t, err)
	assert.Len(t, got, 2, "Close wrote what was held")
	rc.Refused(queue.Refusal{Webhook: "w"})
	refusals, _ = rc.Dropped()
	assert.Equal(t, uint64(2), refusals, "after Close, dropped")
	assert.ErrorIs(t, rc.Flush(ctx), queue.ErrRecorderClosed)
}

// A burst of refusals is written before the tick.
func TestRecorderFlushesABatchEarly(t *testing.T) {
	q := open(t, engines[0].loc(t), queue.Options{})
	ctx := context.Background()
	rc := q.NewRecorder(queue.RecorderOptions{FlushEvery: time.Hour})
	t.Cleanup(func() { rc.Close(ctx) })
	for range 256 {
		rc.Refused(queue.Refusal{Webhook: "w"})
	}
	eventually(t, "the batch written", func() bool {
		got, err := q.Refused(ctx, queue.RefusedFilter{}, 0)
		require.NoError(t, err)
		return len(got) == queue.RefusedPage
	})
}

func TestRecorderKeyUse(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			var now atomic.Int64
			now.Store(time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC).UnixMilli())
			clock := func() time.Time { return time.UnixMilli(now.Load()) }
			loc := e.loc(t)
			q := open(t, loc, queue.Options{Now: clock})
			ctx := context.Background()
			rc := q.NewRecorder(queue.RecorderOptions{FlushEvery: time.Hour})
			t.Cleanup(func() { rc.Close(ctx) })
			t0 := clock().UTC()
			rc.KeyUsed("w", "old", t0.Add(-30*time.Hour))
			rc.KeyUsed("w", "old", t0.Add(-25*time.Hour))
			rc.KeyUsed("w", "current", t0.Add(-23*time.Hour))
			rc.KeyUsed("w", "current", t0.Add(-time.Minute))
			rc.KeyUsed("w", "current", t0)
			require.NoError(t, rc.Flush(ctx))
			rc.KeyUsed("w", "current", t0.Add(-2*time.Minute)) // a second write adds to the hour
			rc.KeyUsed("x", "current", t0.Add(-40*24*time.Hour))
			require.NoError(t, rc.Flush(ctx))

			uses, err := q.KeyUses(ctx)
			require.NoError(t, err)
			assert.Equal(t, []queue.KeyUse{
				{Webhook: "w", Label: "current", Last: t0, Recent: 4},
				{Webhook: "w", Label: "old", Last: t0.Add(-25 * time.Hour), Recent: 0},
			}, uses, "x's use is older than KeyUseKept")

			// 35 days on, the hours are pruned by the next write.
			now.Add((queue.KeyUseKept + time.Hour).Milliseconds())
			rc.KeyUsed("w", "current", clock())
			require.NoError(t, rc.Flush(ctx))
			uses, err = q.KeyUses(ctx)
			require.NoError(t, err)
			assert.Equal(t, []queue.KeyUse{{Webhook: "w", Label: "current", Last: clock().UTC(), Recent: 1}}, uses)
			assert.Equal(t, 1, rawCount(t, loc, "SELECT count(*) FROM stairhook_key_use"), "the old hours are deleted, not only left out")
		})
	}
}

// rawCount runs a count query on the database of loc, beside the queue.
func rawCount(t *testing.T, loc queue.Location, query string) int {
	t.Helper()
	driver, dsn := "sqlite", loc.SQLitePath
	if loc.PostgresURL != "" {
		driver, dsn = "pgx", loc.PostgresURL
	}
	db, err := sql.Open(driver, dsn)
	require.NoError(t, err)
	defer db.Close()
	var n int
	require.NoError(t, db.QueryRow(query).Scan(&n))
	return n
}

// A receiver without a database (inline mode) calls a nil Recorder.
func TestNilRecorder(t *testing.T) {
	var rc *queue.Recorder
	rc.Refused(queue.Refusal{Webhook: "w"})
	rc.KeyUsed("w", "k", time.Now())
	refusals, uses := rc.Dropped()
	assert.Zero(t, refusals+uses)
	assert.NoError(t, rc.Close(context.Background()))
}

// Calls racing the flush loop, with the buffers often empty when it runs:
// the race detector holds the flush to reading them under the lock only.
func TestRecorderConcurrentWithFlush(t *testing.T) {
	q := open(t, engines[0].loc(t), queue.Options{})
	ctx := context.Background()
	rc := q.NewRecorder(queue.RecorderOptions{FlushEvery: time.Millisecond})
	var wg sync.WaitGroup
	deadline := time.Now().Add(300 * time.Millisecond)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				rc.KeyUsed("w", fmt.Sprintf("k%d", i), time.Now())
				rc.Refused(queue.Refusal{Webhook: "w"})
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	require.NoError(t, rc.Close(ctx))
	refusals, uses := rc.Dropped()
	assert.Zero(t, refusals+uses)
}
