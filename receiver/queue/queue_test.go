package queue_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver/queue"
)

// engines opens a fresh database of each kind for one test: SQLite in a
// temporary folder, and Postgres in a database of its own on a server the
// package's tests share.
var engines = []struct {
	name string
	loc  func(t testing.TB) queue.Location
}{
	{"sqlite", func(t testing.TB) queue.Location {
		return queue.Location{SQLitePath: filepath.Join(t.TempDir(), "stairhook.db")}
	}},
	{"postgres", func(t testing.TB) queue.Location {
		return queue.Location{PostgresURL: sharedPostgres(t).CreateDatabase(t, fmt.Sprintf("q%d", dbSeq.Add(1)))}
	}},
}

var (
	pgOnce sync.Once
	pg     *testenv.Postgres
	dbSeq  atomic.Int64
)

// sharedPostgres starts one server for the package's tests (each test has
// its own database on it); it stops with the test binary's process group.
func sharedPostgres(t testing.TB) *testenv.Postgres {
	t.Helper()
	pgOnce.Do(func() { pg = testenv.StartPostgres(&keepAlive{TB: t}) })
	if pg == nil {
		t.Skip("no Postgres")
	}
	return pg
}

// keepAlive lets the shared server outlive the first test that asked for
// it: its cleanups run when the package's tests end (TestMain).
type keepAlive struct{ testing.TB }

var cleanups []func()

func (k *keepAlive) Cleanup(f func()) { cleanups = append(cleanups, f) }

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	os.Exit(code)
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, want, fi.Mode().Perm(), path)
}

// recorder is a WorkFunc whose outcome per sink the test chooses.
type recorder struct {
	mu       sync.Mutex
	calls    map[string][]time.Time // by sink
	outcome  func(d *queue.Delivery) queue.Result
	bodies   map[string]string
	attempts map[string][]int
}

func newRecorder(outcome func(d *queue.Delivery) queue.Result) *recorder {
	if outcome == nil {
		outcome = func(*queue.Delivery) queue.Result { return queue.Result{} }
	}
	return &recorder{calls: map[string][]time.Time{}, bodies: map[string]string{}, attempts: map[string][]int{}, outcome: outcome}
}

func (r *recorder) work(_ context.Context, d *queue.Delivery) queue.Result {
	r.mu.Lock()
	key := d.EventID + "/" + d.Sink
	if d.Webhook != "w" {
		key = d.Webhook + ":" + key
	}
	r.calls[key] = append(r.calls[key], time.Now())
	r.attempts[key] = append(r.attempts[key], d.Attempt)
	r.bodies[key] = string(d.Body)
	r.mu.Unlock()
	return r.outcome(d)
}

func (r *recorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls[key])
}

func (r *recorder) times(key string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.calls[key]...)
}

func open(t *testing.T, loc queue.Location, opts queue.Options) *queue.Queue {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 20 * time.Millisecond
	}
	q, err := queue.Open(context.Background(), loc, opts)
	require.NoError(t, err)
	t.Cleanup(func() { q.Close() })
	return q
}

func start(t *testing.T, q *queue.Queue) {
	t.Helper()
	require.NoError(t, q.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		q.Stop(ctx)
	})
}

func accepted(id string, sinks ...string) *queue.Accepted {
	return &queue.Accepted{Webhook: "w", EventID: id, Type: "churn_risk", Account: "acc", KeyLabel: "k", Scheme: "v1",
		Body: []byte(`{"id":"` + id + `"}`), Sinks: sinks}
}

// eventually waits up to 15 s for cond, polling.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func deadLetters(t *testing.T, q *queue.Queue, webhook string) []*queue.DeadLetter {
	t.Helper()
	var out []*queue.DeadLetter
	require.NoError(t, q.DeadLetters(context.Background(), webhook, func(d *queue.DeadLetter) error {
		out = append(out, d)
		return nil
	}))
	return out
}

func TestAcceptAndWork(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(nil)
			q := open(t, e.loc(t), queue.Options{Work: rec.work})
			ctx := context.Background()

			dup, err := q.Accept(ctx, accepted("e1", "a", "b"))
			require.NoError(t, err)
			assert.False(t, dup)
			dup, err = q.Accept(ctx, accepted("e1", "a", "b"))
			require.NoError(t, err)
			assert.True(t, dup, "the same webhook and id again is a duplicate")
			other := accepted("e1", "a")
			other.Webhook = "x"
			dup, err = q.Accept(ctx, other)
			require.NoError(t, err)
			assert.False(t, dup, "ids are per webhook")
			dup, err = q.Accept(ctx, accepted("e2")) // no route matched: recorded, no job
			require.NoError(t, err)
			assert.False(t, dup)
			dup, err = q.Accept(ctx, accepted("e2"))
			require.NoError(t, err)
			assert.True(t, dup)

			start(t, q)
			eventually(t, "every sink", func() bool {
				return rec.count("e1/a") == 1 && rec.count("e1/b") == 1 && rec.count("x:e1/a") == 1
			})
			time.Sleep(200 * time.Millisecond) // and nothing more
			assert.Equal(t, 1, rec.count("e1/a"), "one attempt of w's e1/a")
			assert.Equal(t, 1, rec.count("x:e1/a"), "one attempt of x's e1/a")
			rec.mu.Lock()
			assert.Equal(t, `{"id":"e1"}`, rec.bodies["e1/b"])
			rec.mu.Unlock()
		})
	}
}

func TestRetryBackoffAndPermanent(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(func(d *queue.Delivery) queue.Result {
				switch d.Sink {
				case "flaky":
					if d.Attempt < 3 {
						return queue.Result{Err: errors.New("503")}
					}
					return queue.Result{}
				case "reject":
					return queue.Result{Err: errors.New("jira 400: bad project"), Permanent: true}
				}
				return queue.Result{}
			})
			q := open(t, e.loc(t), queue.Options{Work: rec.work, FirstRetry: 200 * time.Millisecond, MaxRetry: 400 * time.Millisecond})
			_, err := q.Accept(context.Background(), accepted("e1", "flaky", "reject"))
			require.NoError(t, err)
			start(t, q)

			eventually(t, "three attempts of flaky", func() bool { return rec.count("e1/flaky") == 3 })
			ts := rec.times("e1/flaky")
			// Waits of 200 ms then 400 ms, each drawn from ¾ to all of it,
			// plus the poll: never shorter.
			assert.GreaterOrEqual(t, ts[1].Sub(ts[0]), 150*time.Millisecond)
			assert.GreaterOrEqual(t, ts[2].Sub(ts[1]), 300*time.Millisecond)
			rec.mu.Lock()
			assert.Equal(t, []int{1, 2, 3}, rec.attempts["e1/flaky"])
			rec.mu.Unlock()

			eventually(t, "the dead letter", func() bool { return len(deadLetters(t, q, "")) == 1 })
			assert.Equal(t, 1, rec.count("e1/reject"), "a permanent failure is not retried")
			d := deadLetters(t, q, "w")[0]
			assert.Equal(t, "e1", d.EventID)
			assert.Equal(t, "reject", d.Sink)
			assert.Contains(t, d.Error, "jira 400")
			assert.JSONEq(t, `{"id":"e1"}`, string(d.Body))
			assert.Empty(t, deadLetters(t, q, "other"), "filtered by webhook")
		})
	}
}

func TestWaitIsNotAnAttempt(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			var waited atomic.Bool
			rec := newRecorder(func(d *queue.Delivery) queue.Result {
				if waited.CompareAndSwap(false, true) {
					return queue.Result{Err: errors.New("429"), Wait: 1 * time.Second}
				}
				return queue.Result{}
			})
			q := open(t, e.loc(t), queue.Options{Work: rec.work, FirstRetry: time.Hour, MaxRetry: time.Hour})
			_, err := q.Accept(context.Background(), accepted("e1", "s"))
			require.NoError(t, err)
			start(t, q)
			eventually(t, "the second call", func() bool { return rec.count("e1/s") == 2 })
			ts := rec.times("e1/s")
			gap := ts[1].Sub(ts[0])
			assert.GreaterOrEqual(t, gap, time.Second, "waited as asked")
			assert.Less(t, gap, 1500*time.Millisecond, "not the backoff of an hour")
			rec.mu.Lock()
			assert.Equal(t, []int{1, 1}, rec.attempts["e1/s"], "the wait did not count as an attempt")
			rec.mu.Unlock()
		})
	}
}

func TestGiveUpAfter(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(func(*queue.Delivery) queue.Result { return queue.Result{Err: errors.New("down")} })
			q := open(t, e.loc(t), queue.Options{Work: rec.work, FirstRetry: 100 * time.Millisecond, MaxRetry: 100 * time.Millisecond, GiveUpAfter: 700 * time.Millisecond})
			_, err := q.Accept(context.Background(), accepted("e1", "s"))
			require.NoError(t, err)
			start(t, q)
			eventually(t, "the dead letter", func() bool { return len(deadLetters(t, q, "")) == 1 })
			d := deadLetters(t, q, "")[0]
			assert.Contains(t, d.Error, "gave up")
			assert.Contains(t, d.Error, "down")
			n := rec.count("e1/s")
			assert.GreaterOrEqual(t, n, 2, "retried before giving up")
			time.Sleep(300 * time.Millisecond)
			assert.Equal(t, n, rec.count("e1/s"), "a dead job is not worked")

			// A replay starts a new job with a fresh give-up clock.
			require.NoError(t, q.Replay(context.Background(), d.ID))
			assert.Empty(t, deadLetters(t, q, ""))
			eventually(t, "the replay to die again", func() bool { return len(deadLetters(t, q, "")) == 1 })
			assert.Greater(t, rec.count("e1/s"), n, "the replay had attempts of its own")
			err = q.Replay(context.Background(), d.ID)
			assert.ErrorIs(t, err, queue.ErrNotDead, "the old job is gone")
		})
	}
}

func TestDeadLettersStreamAndReplayAll(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			var fixed atomic.Bool
			rec := newRecorder(func(*queue.Delivery) queue.Result {
				if fixed.Load() {
					return queue.Result{}
				}
				return queue.Result{Err: errors.New("rejected"), Permanent: true}
			})
			q := open(t, e.loc(t), queue.Options{Work: rec.work, Workers: 16})
			ctx := context.Background()
			const n = 250 // more than two pages
			for i := range n {
				_, err := q.Accept(ctx, accepted(fmt.Sprintf("e%03d", i), "s"))
				require.NoError(t, err)
			}
			start(t, q)
			eventually(t, "every dead letter", func() bool { return len(deadLetters(t, q, "")) == n })
			seen := map[string]bool{}
			var last int64
			for _, d := range deadLetters(t, q, "") {
				assert.Greater(t, d.ID, last, "oldest first, each once")
				last = d.ID
				seen[d.EventID] = true
			}
			assert.Len(t, seen, n)

			stop := errors.New("stop")
			calls := 0
			err := q.DeadLetters(ctx, "", func(*queue.DeadLetter) error { calls++; return stop })
			assert.ErrorIs(t, err, stop)
			assert.Equal(t, 1, calls)

			fixed.Store(true)
			replayed, err := q.ReplayAll(ctx, "")
			require.NoError(t, err)
			assert.Equal(t, n, replayed)
			eventually(t, "every replay delivered", func() bool {
				for i := range n {
					if rec.count(fmt.Sprintf("e%03d/s", i)) != 2 {
						return false
					}
				}
				return true
			})
			assert.Empty(t, deadLetters(t, q, ""))
		})
	}
}

func TestBury(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(nil)
			q := open(t, e.loc(t), queue.Options{Work: rec.work})
			died := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
			require.NoError(t, q.Bury(context.Background(), accepted("old", "w.r.jira"), died, "jira 400: no such project"))
			ds := deadLetters(t, q, "")
			require.Len(t, ds, 1)
			assert.Equal(t, "jira 400: no such project", ds[0].Error)
			assert.Equal(t, died, ds[0].Time, "the record's own time, not the import's")
			assert.Equal(t, "w.r.jira", ds[0].Sink)
			start(t, q)
			time.Sleep(200 * time.Millisecond)
			assert.Zero(t, rec.count("old/w.r.jira"), "an imported dead letter waits for a replay")
			require.NoError(t, q.Replay(context.Background(), ds[0].ID))
			eventually(t, "the replay", func() bool { return rec.count("old/w.r.jira") == 1 })
		})
	}
}

func TestOpenConcurrently(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			loc := e.loc(t)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Go(func() {
					q, err := queue.Open(context.Background(), loc, queue.Options{Logger: slog.New(slog.DiscardHandler)})
					if err == nil {
						_, err = q.Accept(context.Background(), accepted(fmt.Sprintf("e%d", i), "s"))
						q.Close()
					}
					errs[i] = err
				})
			}
			wg.Wait()
			for _, err := range errs {
				assert.NoError(t, err)
			}
		})
	}
}

func TestParseLocation(t *testing.T) {
	tests := []struct {
		in   string
		want queue.Location
		ok   bool
	}{
		{"sqlite:./x.db", queue.Location{SQLitePath: "./x.db"}, true},
		{"sqlite:/var/lib/stairhook/db", queue.Location{SQLitePath: "/var/lib/stairhook/db"}, true},
		{"postgres://u:p@127.0.0.1:5432/db", queue.Location{PostgresURL: "postgres://u:p@127.0.0.1:5432/db"}, true},
		{"postgresql://127.0.0.1/db", queue.Location{PostgresURL: "postgresql://127.0.0.1/db"}, true},
		{"sqlite:", queue.Location{}, false},
		{"sqlite:a?mode=ro", queue.Location{}, false},
		{"./x.db", queue.Location{}, false},
		{"redis://127.0.0.1", queue.Location{}, false},
		{"mysql://x", queue.Location{}, false},
	}
	for _, tt := range tests {
		got, err := queue.ParseLocation(tt.in)
		if !tt.ok {
			assert.ErrorIs(t, err, queue.ErrBadStore, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got)
	}
	// A password never shows.
	loc, err := queue.ParseLocation("postgres://u:s3cret@db.example:5432/x")
	require.NoError(t, err)
	assert.NotContains(t, loc.String(), "s3cret")
	_, err = queue.ParseLocation("postgres://u:s3cret@db.example:notaport/x")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret")
}

func TestSQLiteFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "stairhook.db")
	open(t, queue.Location{SQLitePath: path}, queue.Options{})
	assertMode(t, path, 0o600)
}

func TestDeleteOldEvents(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			var now atomic.Int64
			now.Store(time.Now().UnixMilli())
			clock := func() time.Time { return time.UnixMilli(now.Load()) }
			rec := newRecorder(func(d *queue.Delivery) queue.Result {
				switch d.Sink {
				case "dead":
					return queue.Result{Err: errors.New("rejected"), Permanent: true}
				case "slow":
					return queue.Result{Err: errors.New("down")}
				}
				return queue.Result{}
			})
			q := open(t, e.loc(t), queue.Options{Work: rec.work, Now: clock, Retention: time.Hour, FirstRetry: time.Hour, MaxRetry: time.Hour})
			ctx := context.Background()
			for _, a := range []*queue.Accepted{accepted("done", "ok"), accepted("dead", "ok", "dead"), accepted("retrying", "slow"), accepted("noroute")} {
				_, err := q.Accept(ctx, a)
				require.NoError(t, err)
			}
			start(t, q)
			eventually(t, "the attempts", func() bool {
				return rec.count("done/ok") == 1 && rec.count("dead/dead") == 1 && rec.count("retrying/slow") == 1
			})
			eventually(t, "the dead letter", func() bool { return len(deadLetters(t, q, "")) == 1 })

			n, err := q.DeleteOldEvents(ctx)
			require.NoError(t, err)
			assert.Zero(t, n, "nothing is older than the retention yet")

			now.Add((time.Hour + time.Minute).Milliseconds())
			// The job of "done" is recorded as done just after its attempt
			// returns: delete until it is.
			var deleted int64
			eventually(t, "the two events to go", func() bool {
				n, err := q.DeleteOldEvents(ctx)
				require.NoError(t, err)
				deleted += n
				return deleted >= 2
			})
			n, err = q.DeleteOldEvents(ctx)
			require.NoError(t, err)
			assert.Equal(t, int64(2), deleted+n, "the event whose job succeeded and the one with no route, and no other")
			for id, kept := range map[string]bool{"done": false, "noroute": false, "dead": true, "retrying": true} {
				got, err := q.Accepted(ctx, "w", id)
				require.NoError(t, err)
				assert.Equal(t, kept, got, id)
			}
			assert.NotEmpty(t, deadLetters(t, q, "")[0].Body, "a dead letter keeps its body")
		})
	}
}

// Concurrent Accepts of one event, whether they share a batch or not,
// record it once: one is new, the others duplicates, and its sinks have one
// job each.
func TestAcceptConcurrentCopies(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(nil)
			q := open(t, e.loc(t), queue.Options{Work: rec.work})
			const copies = 32
			var fresh atomic.Int32
			var wg sync.WaitGroup
			for i := range copies {
				wg.Go(func() {
					// Other events around it, so batches mix.
					_, err := q.Accept(context.Background(), accepted(fmt.Sprintf("other%d", i), "s"))
					assert.NoError(t, err)
					dup, err := q.Accept(context.Background(), accepted("same", "s"))
					assert.NoError(t, err)
					if !dup {
						fresh.Add(1)
					}
				})
			}
			wg.Wait()
			assert.Equal(t, int32(1), fresh.Load())
			start(t, q)
			eventually(t, "every job", func() bool { return rec.count("same/s") == 1 && rec.count(fmt.Sprintf("other%d/s", copies-1)) == 1 })
			time.Sleep(200 * time.Millisecond)
			assert.Equal(t, 1, rec.count("same/s"))
		})
	}
}

// The end of Start's context is not a shutdown: a running attempt goes
// on, and Stop waits for it (River takes a cancelled start context for a
// hard stop that cancels every attempt).
func TestStartContextDoesNotCancelAttempts(t *testing.T) {
	entered := make(chan struct{})
	var ctxErr atomic.Value
	var calls atomic.Int32
	q := open(t, engines[0].loc(t), queue.Options{Work: func(ctx context.Context, _ *queue.Delivery) queue.Result {
		if calls.Add(1) == 1 {
			close(entered)
		}
		select {
		case <-time.After(300 * time.Millisecond):
		case <-ctx.Done():
		}
		ctxErr.Store(fmt.Sprint(ctx.Err()))
		return queue.Result{}
	}})
	_, err := q.Accept(context.Background(), accepted("e1", "s"))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, q.Start(ctx))
	<-entered
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	require.NoError(t, q.Stop(sctx))
	assert.Equal(t, "<nil>", ctxErr.Load(), "the attempt ran to its end")
	assert.Equal(t, int32(1), calls.Load())
}
