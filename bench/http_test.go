package bench

import (
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/stairhook/stairhook/verify"
)

const (
	// httpBodySize is the body of every request of BenchmarkHTTP.
	httpBodySize = 1 << 10
	// httpWorkers is the fixed number of client workers, and of keep-alive
	// connections, per server.
	httpWorkers = 8
	// httpChunk is how many requests each server gets in one turn: the two
	// servers take turns often (a turn lasts tens of milliseconds), so both
	// see the same load from the rest of the machine.
	httpChunk = 500
	// httpWarmup is how many requests each server gets, untimed, before the
	// measured ones: connections are open and buffers warm when timing
	// starts.
	httpWarmup = 20 * httpWorkers
)

// loadTarget is one server under load and what was measured on it.
type loadTarget struct {
	name      string
	url       string
	client    *http.Client
	handled   atomic.Int64 // calls of the inner handler
	latencies []time.Duration
	wall      time.Duration
	requests  int
}

// BenchmarkHTTP sends b.N POSTs with 1 KiB bodies to each of two net/http
// servers listening on 127.0.0.1: one with verify's Middleware (memory
// store sized for every id) around a handler that reads the body, one with
// the same handler bare. The load is the same for both: vegeta's attacker
// at maximum throughput with a fixed number of workers and keep-alive
// connections, every request with its own id and signature prepared before
// the run. The two servers take turns of 500 requests within one run.
//
// Reported per run: requests per second and p50/p99 latency for each server
// (bare-…, mw-…), the throughput ratio mw/bare, and as ns/op the
// middleware server's wall time per request (the inverse of its
// throughput).
func BenchmarkHTTP(b *testing.B) {
	n := b.N
	key := benchKey()
	sec, err := verify.RawSecret(key)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := verify.NewSigner(sec)
	if err != nil {
		b.Fatal(err)
	}
	var rejected atomic.Int64
	v, err := verify.NewVerifier(verify.Options{
		Keys:    []verify.Key{{Label: "bench", Secret: sec}},
		Store:   verify.NewMemoryStore(verify.MemoryStoreOptions{MaxEntries: n + 2*httpWarmup + 1024}),
		OnError: func(*http.Request, error) { rejected.Add(1) },
	})
	if err != nil {
		b.Fatal(err)
	}

	bare := &loadTarget{name: "bare"}
	mw := &loadTarget{name: "mw"}
	bare.url = serve(b, readBody(&bare.handled))
	mw.url = serve(b, v.Middleware(readBody(&mw.handled)))
	for _, t := range []*loadTarget{bare, mw} {
		t.client = &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				MaxIdleConnsPerHost: httpWorkers,
				MaxConnsPerHost:     httpWorkers,
				DisableCompression:  true,
			},
		}
		b.Cleanup(t.client.CloseIdleConnections)
	}

	body := jsonBody(httpBodySize)
	now := time.Now()
	sign := func(prefix string, count int) []http.Header {
		hs := make([]http.Header, count)
		for i := range hs {
			h, err := signer.Sign(prefix+strconv.Itoa(i), now, body)
			if err != nil {
				b.Fatal(err)
			}
			hs[i] = h
		}
		return hs
	}
	warm := sign("msg_warmup_", httpWarmup)
	load := sign("msg_bench_", n)

	for _, t := range []*loadTarget{bare, mw} {
		attack(b, t, body, warm, false)
	}
	b.ResetTimer()
	chunks := (n + httpChunk - 1) / httpChunk
	for c := range chunks {
		part := load[c*n/chunks : (c+1)*n/chunks]
		// Alternate which server goes first, so neither always follows
		// the other.
		order := []*loadTarget{bare, mw}
		if c%2 == 1 {
			order = []*loadTarget{mw, bare}
		}
		for _, t := range order {
			attack(b, t, body, part, true)
		}
	}
	b.StopTimer()

	if r := rejected.Load(); r != 0 {
		b.Fatalf("the middleware rejected %d requests", r)
	}
	for _, t := range []*loadTarget{bare, mw} {
		if got, want := t.handled.Load(), int64(httpWarmup+n); got != want {
			b.Fatalf("%s: handler ran %d times, want %d", t.name, got, want)
		}
	}
	for _, t := range []*loadTarget{bare, mw} {
		slices.Sort(t.latencies)
		b.ReportMetric(float64(t.requests)/t.wall.Seconds(), t.name+"-req/s")
		b.ReportMetric(micros(quantile(t.latencies, 0.50)), t.name+"-p50-us")
		b.ReportMetric(micros(quantile(t.latencies, 0.99)), t.name+"-p99-us")
	}
	ratio := (float64(mw.requests) / mw.wall.Seconds()) / (float64(bare.requests) / bare.wall.Seconds())
	b.ReportMetric(ratio, "mw/bare-throughput")
	b.ReportMetric(float64(mw.wall.Nanoseconds())/float64(mw.requests), "ns/op")
}

// readBody is the inner handler: it reads the whole body, as any webhook
// handler does, counts the call and answers 200 with no body.
func readBody(calls *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		calls.Add(1)
	})
}

// serve starts an HTTP server with h on a free loopback port and returns its
// URL; the server is closed when the benchmark ends.
func serve(b *testing.B, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/webhooks/bench"
}

// attack sends one POST per header set to t at maximum throughput with
// httpWorkers workers and fails the benchmark on any answer but a plain
// 200. When record is set, latencies and wall time are added to t.
func attack(b *testing.B, t *loadTarget, body []byte, headers []http.Header, record bool) {
	var next atomic.Int64
	targeter := func(tgt *vegeta.Target) error {
		i := next.Add(1) - 1
		if i >= int64(len(headers)) {
			return vegeta.ErrNoTargets
		}
		*tgt = vegeta.Target{Method: http.MethodPost, URL: t.url, Body: body, Header: headers[i]}
		return nil
	}
	a := vegeta.NewAttacker(
		vegeta.Client(t.client),
		vegeta.Workers(httpWorkers),
		vegeta.MaxWorkers(httpWorkers),
		vegeta.MaxBody(4096),
	)
	start := time.Now()
	got := 0
	for res := range a.Attack(targeter, vegeta.ConstantPacer{}, 0, "") {
		if res.Code == 0 && res.Error == vegeta.ErrNoTargets.Error() {
			// A worker found the targets exhausted: not a request.
			continue
		}
		if res.Code != http.StatusOK || res.Error != "" {
			b.Fatalf("%s: status %d, error %q, body %q", t.name, res.Code, res.Error, res.Body)
		}
		if res.Headers.Get(verify.DuplicateHeader) != "" {
			b.Fatalf("%s: answered as a duplicate", t.name)
		}
		got++
		if record {
			t.latencies = append(t.latencies, res.Latency)
		}
	}
	wall := time.Since(start)
	if got != len(headers) {
		b.Fatalf("%s: %d answers for %d requests", t.name, got, len(headers))
	}
	if record {
		t.wall += wall
		t.requests += got
	}
}

// quantile returns the q-quantile of sorted latencies (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func TestQuantile(t *testing.T) {
	lat := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5}, {0.99, 10}, {0.1, 1}, {0, 1}, {1, 10}} {
		if got := quantile(lat, tc.q); got != tc.want {
			t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := quantile(nil, 0.5); got != 0 {
		t.Errorf("quantile of nothing = %v", got)
	}
}
