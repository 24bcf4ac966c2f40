package receiver

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/verify"
)

// benchConcurrency is the number of requests in flight in the accept
// benchmarks, as the target states it.
const benchConcurrency = 32

// benchWarmUp is how many untimed requests each of the benchmarks' clients
// sends first.
const benchWarmUp = 4

// benchStores are the databases the accept benchmarks run on.
func benchStores(b *testing.B) map[string]func(b *testing.B) StoreConfig {
	return map[string]func(b *testing.B) StoreConfig{
		"sqlite": func(b *testing.B) StoreConfig {
			return StoreConfig{SQLite: filepath.Join(b.TempDir(), "bench.db")}
		},
		"postgres": func(b *testing.B) StoreConfig {
			pg := testenv.StartPostgres(b)
			return StoreConfig{Postgres: pg.URL()}
		},
	}
}

// benchBody is a 1 KiB churn_risk event with the given id.
func benchBody(b *testing.B, id string) []byte {
	body := eventBody(b, event.TypeChurnRisk, id, func(m map[string]any) { m["pad"] = "" })
	pad := max(0, 1024-len(body))
	body = eventBody(b, event.TypeChurnRisk, id, func(m map[string]any) { m["pad"] = strings.Repeat("x", pad) })
	require.Len(b, body, 1024)
	return body
}

// BenchmarkAccept measures the accept path over loopback HTTP: verify,
// record the event and two jobs, answer 202; b.N requests at concurrency
// 32, each a new 1 KiB event with two no-op sinks. Role accept answers
// only; role all also works the jobs in the same process, as a lone serve
// does. It reports events/s and the latency to the 2xx at p50 and p99.
func BenchmarkAccept(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		for _, role := range []Role{RoleAccept, RoleAll} {
			b.Run(name+"/"+string(role), func(b *testing.B) {
				store := benchStores(b)[name](b)
				runAcceptBench(b, store, role, nil)
			})
		}
	}
}

// BenchmarkAcceptToDone measures, with no-op sinks, the time from the
// start of the request to the second sink's success (p50, p99), at a
// steady 100 events/s (200 jobs/s, well under one instance's worker
// throughput): the pipeline's latency, not that of a backlog.
func BenchmarkAcceptToDone(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			store := benchStores(b)[name](b)
			var mu sync.Mutex
			done := map[string]int{}
			var lat []time.Duration
			starts := sync.Map{}
			onDone := func(id string) {
				mu.Lock()
				defer mu.Unlock()
				if done[id]++; done[id] == 2 {
					if t0, ok := starts.Load(id); ok {
						lat = append(lat, time.Since(t0.(time.Time)))
					}
				}
			}
			runAcceptBench(b, store, RoleAll, &acceptHooks{rate: doneRate, start: func(id string) { starts.Store(id, time.Now()) }, done: onDone, wait: func(n int) bool {
				mu.Lock()
				defer mu.Unlock()
				return len(lat) >= n
			}})
			mu.Lock()
			defer mu.Unlock()
			reportLatency(b, lat, "done")
		})
	}
}

type acceptHooks struct {
	start func(id string)
	done  func(id string)
	wait  func(n int) bool
	// rate paces the requests (events per second): the latency to done is
	// that of the pipeline, not of a queue built up by sending faster than
	// the workers deliver.
	rate int
}

// doneRate is the pace of BenchmarkAcceptToDone.
const doneRate = 100

func runAcceptBench(b *testing.B, store StoreConfig, role Role, hooks *acceptHooks) {
	secret, err := verify.ParseSecret(testSecret)
	require.NoError(b, err)
	cfg := &Config{
		Store:  store,
		Outbox: b.TempDir(),
		Webhooks: []WebhookConfig{{
			Name:    "staircase",
			Secrets: []SecretConfig{{Label: "current", Secret: testSecret}},
			Routes:  []RouteConfig{{Name: "all", Sinks: []string{"one", "two"}}},
		}},
	}
	mk := func(name string) Sink {
		return sinkFunc{name: name, f: func(ev *event.Event) {
			if hooks != nil {
				hooks.done(ev.ID)
			}
		}}
	}
	srv, err := NewServer(cfg, ServerOptions{
		Logger:       slog.New(slog.DiscardHandler),
		Sinks:        []Sink{mk("one"), mk("two")},
		pollInterval: 10 * time.Millisecond,
		Role:         role,
	})
	require.NoError(b, err)
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(served) }()
	defer func() { cancel(); <-served }()
	url := "http://" + ln.Addr().String() + "/webhooks/staircase"

	// Signed before the clock starts.
	signer, err := verify.NewSigner(secret)
	require.NoError(b, err)
	type req struct {
		id   string
		body []byte
		h    http.Header
	}
	run := fmt.Sprintf("%d", time.Now().UnixNano())
	reqs := make([]req, b.N)
	for i := range reqs {
		id := fmt.Sprintf("evt_%s_%d", run, i)
		body := benchBody(b, id)
		h, err := signer.Sign(id, time.Now(), body)
		require.NoError(b, err)
		reqs[i] = req{id, body, h}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchConcurrency, MaxConnsPerHost: benchConcurrency}}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failures atomic.Int64
	// Warm up, untimed: every connection (HTTP and the database pool's)
	// opened and used, as in a server that has been running.
	var warm sync.WaitGroup
	for w := range benchConcurrency {
		warm.Go(func() {
			for j := range benchWarmUp {
				id := fmt.Sprintf("warm_%s_%d_%d", run, w, j)
				body := benchBody(b, id)
				h, _ := signer.Sign(id, time.Now(), body)
				hr, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				maps(hr.Header, h)
				if resp, err := client.Do(hr); err == nil {
					resp.Body.Close()
				}
			}
		})
	}
	warm.Wait()

	var tick <-chan time.Time
	if hooks != nil && hooks.rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(hooks.rate))
		defer t.Stop()
		tick = t.C
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range benchConcurrency {
		wg.Go(func() {
			for {
				if tick != nil {
					<-tick
				}
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				r := reqs[i]
				hr, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(r.body))
				maps(hr.Header, r.h)
				if hooks != nil {
					hooks.start(r.id)
				}
				t0 := time.Now()
				resp, err := client.Do(hr)
				if err != nil {
					failures.Add(1)
					continue
				}
				resp.Body.Close()
				lat[i] = time.Since(t0)
				if resp.StatusCode != http.StatusAccepted {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if hooks != nil {
		for deadline := time.Now().Add(time.Minute); !hooks.wait(b.N); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("sinks did not finish within a minute")
			}
		}
	}
	b.StopTimer()
	if n := failures.Load(); n > 0 {
		b.Fatalf("%d of %d requests not answered 202", n, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	reportLatency(b, lat, "2xx")
}

func maps(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

// reportLatency reports the p50 and p99 of lat in milliseconds.
func reportLatency(b *testing.B, lat []time.Duration, what string) {
	if len(lat) == 0 {
		return
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	q := func(p float64) float64 { return float64(s[int(p*float64(len(s)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-"+what+"-ms")
	b.ReportMetric(q(0.99), "p99-"+what+"-ms")
}

// sinkFunc is a sink from a function.
type sinkFunc struct {
	name string
	f    func(*event.Event)
}

func (s sinkFunc) Name() string { return s.name }
func (s sinkFunc) Deliver(_ context.Context, ev *event.Event) error {
	s.f(ev)
	return nil
}

// BenchmarkCommitLimit is the limit the accept path is measured against:
// the same database, at the same durability, committing one small row
// per transaction at concurrency 32, as fast as it can.
func BenchmarkCommitLimit(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			sc := benchStores(b)[name](b)
			var exec func(ctx context.Context, i int) error
			if sc.SQLite != "" {
				db, err := sql.Open("sqlite", sc.SQLite+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
				require.NoError(b, err)
				db.SetMaxOpenConns(1)
				defer db.Close()
				_, err = db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
				require.NoError(b, err)
				exec = func(ctx context.Context, i int) error {
					tx, err := db.BeginTx(ctx, nil)
					if err != nil {
						return err
					}
					if _, err := tx.Exec("INSERT INTO t (id, v) VALUES (?, 'x')", i); err != nil {
						tx.Rollback()
						return err
					}
					return tx.Commit()
				}
			} else {
				pool, err := pgxpool.New(context.Background(), sc.Postgres)
				require.NoError(b, err)
				defer pool.Close()
				_, err = pool.Exec(context.Background(), "CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)")
				require.NoError(b, err)
				exec = func(ctx context.Context, i int) error {
					_, err := pool.Exec(ctx, "INSERT INTO t (id, v) VALUES ($1, 'x')", i)
					return err
				}
			}
			var warm sync.WaitGroup // untimed: the pool's connections opened and used
			for w := range benchConcurrency {
				warm.Go(func() {
					for j := range benchWarmUp {
						if err := exec(context.Background(), -1-w*benchWarmUp-j); err != nil {
							b.Error(err)
						}
					}
				})
			}
			warm.Wait()
			var next atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range benchConcurrency {
				wg.Go(func() {
					for {
						i := int(next.Add(1)) - 1
						if i >= b.N {
							return
						}
						if err := exec(context.Background(), i); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
		})
	}
}
