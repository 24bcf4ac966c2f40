// Command consoleload measures what the operator console of
// `stairhook serve` costs: the serve process's memory with a large
// database, and the webhook accept path's latency while the admin listener
// is idle and while it is busy. It is a measurement, not a test: it asserts
// nothing and prints what it saw, with the load average next to every
// figure (the machine may be shared).
//
// It runs the real binary on SQLite with dry-run sinks (two routes, Jira
// and email, both matching every event, so two jobs per event) in a
// temporary folder, then:
//
//  1. memory: VmRSS and VmHWM of serve (/proc/PID/status) idle after start
//     on an empty database; after -n events were accepted through POST
//     /webhooks/staircase (signed with verify.Signer, sent by vegeta at
//     -load-workers concurrency, as fast as they go) and every job was
//     delivered (stairhook_queue_jobs on /metrics shows none queued,
//     running, retrying or waiting); and while one client browses the
//     console (overview, events pages with filters, an event's page,
//     /refused, /dead, /keys, /metrics) in a loop for -browse;
//  2. latency: -rounds times, phase a (admin listener idle) then phase b
//     (-browsers clients looping over the console pages and /metrics as
//     fast as they can), each phase -phase long at -rate events/s,
//     open-loop (vegeta's constant pacer, requests signed beforehand).
//     Per phase it reports the client-side p50 and p99 of the 202 answers;
//     per condition the medians of those over the rounds and the ratio
//     b/a; and the console pages' own p50/p99 under b. The events of these
//     phases are added to the database (rounds × 2 × rate × phase more).
//
// Usage, from the module root:
//
//	go build -o /tmp/m/stairhook ./cmd/stairhook
//	cd bench && go run ./cmd/consoleload -bin /tmp/m/stairhook -dir /tmp/consoleload
//
// While bench/go.mod lags the root module's requirements (go reports
// "updates to go.mod needed"), build with a scratch copy of it instead of
// tidying the committed one:
//
//	cp go.mod /tmp/m/cl.mod && cp go.sum /tmp/m/cl.sum
//	go build -modfile=/tmp/m/cl.mod -mod=mod -o /tmp/m/consoleload ./cmd/consoleload
//	/tmp/m/consoleload -bin /tmp/m/stairhook -dir /tmp/consoleload
//
// Flags: -n 100000 -load-workers 16 -rate 100 -phase 30s -rounds 3
// -browsers 4 -browse 30s. -dir is emptied first (default a new temporary
// folder); serve's log goes to DIR/serve.log.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/verify"
)

const (
	webhook  = "staircase"
	token    = "consoleload-admin-token-0123456789"
	accounts = 500
)

var (
	bin         = flag.String("bin", "/tmp/m/stairhook", "the stairhook binary")
	dir         = flag.String("dir", "", "working folder for the database, outbox and log (emptied; default a new temporary folder)")
	n           = flag.Int("n", 100_000, "events loaded before the measurements")
	loadWorkers = flag.Int("load-workers", 16, "concurrent senders while loading")
	rate        = flag.Int("rate", 100, "events per second in the latency phases")
	phase       = flag.Duration("phase", 30*time.Second, "length of one latency phase")
	rounds      = flag.Int("rounds", 3, "a/b rounds")
	browsers    = flag.Int("browsers", 4, "console clients in phase b")
	browseFor   = flag.Duration("browse", 30*time.Second, "length of the memory-while-browsing step")
)

func main() {
	flag.Parse()
	log.SetFlags(log.Ltime)
	if *dir == "" {
		d, err := os.MkdirTemp("", "consoleload-")
		check(err)
		*dir = d
	} else {
		check(os.RemoveAll(*dir))
		check(os.MkdirAll(*dir, 0o700))
	}
	secret, err := verify.NewSecret()
	check(err)
	signer, err := verify.NewSigner(secret)
	check(err)
	gen := newGenerator(signer)

	s := startServe(secret)
	defer s.stop()
	log.Printf("serve pid %d, webhooks on %s, console on %s, folder %s", s.cmd.Process.Pid, s.addr, s.admin, *dir)

	// 1. Memory.
	time.Sleep(3 * time.Second)
	fmt.Printf("\n## Memory (serve, SQLite, dry-run sinks)\n\n| step | VmRSS MiB | VmHWM MiB | load avg |\n|---|---|---|---|\n")
	memRow("idle after start, empty database", s.pid())

	start := time.Now()
	ok, bad := s.bulkLoad(gen, *n)
	acceptWall := time.Since(start)
	log.Printf("loaded %d events (202) in %v (%.0f ev/s), %d other answers; waiting for delivery", ok, acceptWall.Round(time.Millisecond), float64(ok)/acceptWall.Seconds(), bad)
	s.waitDelivered(2 * ok)
	log.Printf("all delivered %v after the first request", time.Since(start).Round(time.Second))
	time.Sleep(2 * time.Second)
	memRow(fmt.Sprintf("after %d events accepted and delivered", ok), s.pid())

	pages := s.pages(gen)
	log.Printf("console pages: %q", pages)
	ctx, cancel := context.WithTimeout(context.Background(), *browseFor)
	stats := newPageStats()
	var peak atomic.Int64
	go sampleRSS(ctx, s.pid(), &peak)
	s.browse(ctx, pages, stats)
	cancel()
	memRow(fmt.Sprintf("while 1 client browses the console for %v (VmRSS: max sampled)", *browseFor), s.pid(), peak.Load())
	fmt.Printf("\n(browsing: %d page loads in %v, %d not 200)\n", stats.total(), *browseFor, stats.failed())

	// 2. Latency.
	var p50s, p99s [2][]time.Duration
	busyStats := newPageStats()
	fmt.Printf("\n## Accept path at %d ev/s, open-loop, %v per phase\n\n| round | phase | 202s | other | p50 ms | p99 ms | max ms | console loads | load avg |\n|---|---|---|---|---|---|---|---|---|\n", *rate, *phase)
	for r := 1; r <= *rounds; r++ {
		for ph, name := range []string{"a idle", "b busy"} {
			reqs := gen.signedBatch(*rate * int(phase.Seconds()))
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			before := busyStats.total()
			if ph == 1 {
				for range *browsers {
					wg.Go(func() { s.browse(ctx, pages, busyStats) })
				}
				time.Sleep(500 * time.Millisecond) // the browsers under way
			}
			lat, other := s.paced(reqs)
			cancel()
			wg.Wait()
			slices.Sort(lat)
			p50, p99 := quantile(lat, 0.50), quantile(lat, 0.99)
			p50s[ph], p99s[ph] = append(p50s[ph], p50), append(p99s[ph], p99)
			fmt.Printf("| %d | %s | %d | %d | %.2f | %.2f | %.2f | %d | %s |\n", r, name, len(lat), other,
				ms(p50), ms(p99), ms(lat[len(lat)-1]), busyStats.total()-before, loadavg())
		}
	}
	fmt.Printf("\n| condition | median p50 ms | median p99 ms |\n|---|---|---|\n")
	for ph, name := range []string{"a admin idle", "b admin busy"} {
		fmt.Printf("| %s | %.2f | %.2f |\n", name, ms(median(p50s[ph])), ms(median(p99s[ph])))
	}
	fmt.Printf("| ratio b/a | %.2f | %.2f |\n", ratio(median(p50s[1]), median(p50s[0])), ratio(median(p99s[1]), median(p99s[0])))

	fmt.Printf("\n## Console pages under b (%d clients, all rounds)\n\n| page | loads | not 200 | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n", *browsers)
	busyStats.print()
	fmt.Printf("\n(single-client browsing during the memory step, for comparison)\n\n| page | loads | not 200 | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n")
	stats.print()

	fmt.Printf("\n## Memory at the end\n\n| step | VmRSS MiB | VmHWM MiB | load avg |\n|---|---|---|---|\n")
	memRow("after the latency rounds", s.pid())
	fmt.Printf("\ndatabase: %s\n", dbSizes())
}

// generator makes signed 1-event bodies: every sample type in turn, one of
// `accounts` account ids, a unique event id.
type generator struct {
	signer  *verify.Signer
	samples []map[string]any
	run     string
	next    atomic.Int64
	mu      sync.Mutex
	ids     []string // a few ids, for the event pages
}

func newGenerator(signer *verify.Signer) *generator {
	g := &generator{signer: signer, run: strconv.FormatInt(time.Now().Unix(), 36)}
	for _, typ := range event.SampleTypes() {
		b, err := event.Sample(typ)
		check(err)
		var m map[string]any
		check(json.Unmarshal(b, &m))
		g.samples = append(g.samples, m)
	}
	return g
}

func (g *generator) make() (string, []byte, http.Header) {
	i := int(g.next.Add(1) - 1)
	base := g.samples[i%len(g.samples)]
	m := make(map[string]any, len(base))
	for k, v := range base {
		m[k] = v
	}
	id := fmt.Sprintf("evt_load_%s_%07d", g.run, i)
	m["id"] = id
	acc := map[string]any{}
	for k, v := range base["account"].(map[string]any) {
		acc[k] = v
	}
	acc["id"] = fmt.Sprintf("acc_load_%04d", i%accounts)
	acc["name"] = fmt.Sprintf("Account %04d", i%accounts)
	m["account"] = acc
	body, err := json.Marshal(m)
	check(err)
	h, err := g.signer.Sign(id, time.Now(), body)
	check(err)
	if i%9973 == 0 {
		g.mu.Lock()
		g.ids = append(g.ids, id)
		g.mu.Unlock()
	}
	return id, body, h
}

type signed struct {
	body []byte
	h    http.Header
}

func (g *generator) signedBatch(k int) []signed {
	out := make([]signed, k)
	for i := range out {
		_, b, h := g.make()
		out[i] = signed{b, h}
	}
	return out
}

type serve struct {
	cmd         *exec.Cmd
	addr, admin string
	hook        *http.Client // the webhook sender's connections
	console     *http.Client // the console clients'
	exited      chan struct{}
}

func startServe(secret verify.Secret) *serve {
	cfg := fmt.Sprintf(`store: {sqlite: %q}
outbox: %q
admin: {token: %q}
webhooks:
  - name: %s
    secrets: [{label: current, secret: %q}]
    routes:
      - name: jira
        jira: {project: CS, labels: [staircase], priorities: {high: High, critical: Highest}}
      - name: email
        email: {to: [csm@example.com]}
`, filepath.Join(*dir, "stairhook.db"), filepath.Join(*dir, "outbox"), token, webhook, secret.Encode())
	path := filepath.Join(*dir, "config.yaml")
	check(os.WriteFile(path, []byte(cfg), 0o600))
	logf, err := os.Create(filepath.Join(*dir, "serve.log"))
	check(err)
	cmd := exec.Command(*bin, "serve", "--config", path, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "STAIRHOOK_CONFIG=", "STAIRHOOK_STORE=", "OTEL_SDK_DISABLED=true")
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the measurement
	out, err := cmd.StdoutPipe()
	check(err)
	check(cmd.Start())
	s := &serve{cmd: cmd, exited: make(chan struct{})}
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "stairhook serve: listening on "); ok {
				s.addr = a
			}
			if a, ok := strings.CutPrefix(line, "console: http://"); ok {
				s.admin, _, _ = strings.Cut(a, "/")
				close(found)
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() { _ = cmd.Wait(); close(s.exited) }()
	select {
	case <-found:
	case <-s.exited:
		log.Fatalf("serve exited at start; see %s", filepath.Join(*dir, "serve.log"))
	case <-time.After(30 * time.Second):
		log.Fatal("serve did not start within 30 s")
	}
	s.hook = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	s.console = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	return s
}

func (s *serve) pid() int { return s.cmd.Process.Pid }

func (s *serve) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
	}
}

// bulkLoad sends k events as fast as `-load-workers` workers go.
func (s *serve) bulkLoad(g *generator, k int) (ok, other int) {
	var sent atomic.Int64
	url := "http://" + s.addr + "/webhooks/" + webhook
	tr := func(t *vegeta.Target) error {
		if sent.Add(1) > int64(k) {
			return vegeta.ErrNoTargets
		}
		_, body, h := g.make()
		*t = vegeta.Target{Method: http.MethodPost, URL: url, Body: body, Header: h}
		return nil
	}
	a := vegeta.NewAttacker(vegeta.Client(s.hook), vegeta.Workers(uint64(*loadWorkers)), vegeta.MaxWorkers(uint64(*loadWorkers)), vegeta.MaxBody(4096))
	last := time.Now()
	for res := range a.Attack(tr, vegeta.ConstantPacer{}, 0, "load") {
		if res.Code == 0 && res.Error == vegeta.ErrNoTargets.Error() {
			continue
		}
		if res.Code == http.StatusAccepted {
			ok++
		} else {
			if other++; other <= 5 {
				log.Printf("load: status %d %s %q", res.Code, res.Error, res.Body)
			}
		}
		if time.Since(last) > 15*time.Second {
			last = time.Now()
			log.Printf("load: %d accepted, load avg %s", ok, loadavg())
		}
	}
	return ok, other
}

// paced sends reqs at -rate per second, open-loop, and returns the
// latencies of the 202 answers and the count of the others.
func (s *serve) paced(reqs []signed) ([]time.Duration, int) {
	var i atomic.Int64
	url := "http://" + s.addr + "/webhooks/" + webhook
	tr := func(t *vegeta.Target) error {
		j := i.Add(1) - 1
		if j >= int64(len(reqs)) {
			return vegeta.ErrNoTargets
		}
		*t = vegeta.Target{Method: http.MethodPost, URL: url, Body: reqs[j].body, Header: reqs[j].h}
		return nil
	}
	a := vegeta.NewAttacker(vegeta.Client(s.hook), vegeta.Workers(8), vegeta.MaxBody(4096))
	var lat []time.Duration
	other := 0
	for res := range a.Attack(tr, vegeta.Rate{Freq: *rate, Per: time.Second}, *phase, "paced") {
		if res.Code == 0 && res.Error == vegeta.ErrNoTargets.Error() {
			continue
		}
		if res.Code == http.StatusAccepted {
			lat = append(lat, res.Latency)
		} else {
			other++
		}
	}
	return lat, other
}

func (s *serve) get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.admin+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.console.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// waitDelivered polls /metrics until want attempts were delivered
// (stairhook_sink_attempts_total) and no job is queued, running, retrying
// or waiting (that gauge is cached for 5 s by serve).
func (s *serve) waitDelivered(want int) {
	for {
		time.Sleep(3 * time.Second)
		code, body, err := s.get(context.Background(), "/metrics")
		if err != nil || code != http.StatusOK {
			log.Printf("metrics: %d %v", code, err)
			continue
		}
		jobs := map[string]float64{}
		delivered := 0.0
		for line := range strings.Lines(string(body)) {
			if rest, ok := strings.CutPrefix(line, `stairhook_queue_jobs{state="`); ok {
				st, v, _ := strings.Cut(rest, `"} `)
				f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				jobs[st] = f
			}
			if strings.HasPrefix(line, "stairhook_sink_attempts_total{") && strings.Contains(line, `outcome="delivered"`) {
				f, _ := strconv.ParseFloat(strings.TrimSpace(line[strings.LastIndex(line, " "):]), 64)
				delivered += f
			}
		}
		pending := jobs["queued"] + jobs["running"] + jobs["retrying"] + jobs["waiting"]
		log.Printf("delivered %.0f of %d, jobs %v (load avg %s)", delivered, want, jobs, loadavg())
		if pending == 0 && delivered >= float64(want) {
			return
		}
	}
}

// pages are the console pages a browsing client loops over.
func (s *serve) pages(g *generator) []string {
	g.mu.Lock()
	ids := slices.Clone(g.ids)
	g.mu.Unlock()
	id := ids[len(ids)/2]
	p := []string{
		"/",
		"/events",
		"/events?type=churn_risk",
		"/events?account=acc_load_0042",
		"/events?state=delivered",
		"/events?state=queued",
		"/events?since=1h&type=renewal",
		"/events?q=" + id,
		"/event?webhook=" + webhook + "&id=" + id,
		"/event?id=" + ids[0],
		"/refused",
		"/dead",
		"/keys",
		"/metrics",
	}
	// The second page of the events list, by its cursor.
	if _, body, err := s.get(context.Background(), "/events"); err == nil {
		if _, after, ok := strings.Cut(string(body), `href="/events?cursor=`); ok {
			cur, _, _ := strings.Cut(after, `"`)
			p = append(p, "/events?cursor="+strings.ReplaceAll(cur, "&amp;", "&"))
		}
	}
	return p
}

// browse loops over pages until ctx is done, recording each load's time.
func (s *serve) browse(ctx context.Context, pages []string, st *pageStats) {
	for ctx.Err() == nil {
		for _, p := range pages {
			t0 := time.Now()
			code, _, err := s.get(ctx, p)
			d := time.Since(t0)
			if ctx.Err() != nil {
				return
			}
			st.add(p, d, err == nil && code == http.StatusOK)
		}
	}
}

type pageStats struct {
	mu    sync.Mutex
	order []string
	lat   map[string][]time.Duration
	bad   map[string]int
}

func newPageStats() *pageStats {
	return &pageStats{lat: map[string][]time.Duration{}, bad: map[string]int{}}
}

func (p *pageStats) add(page string, d time.Duration, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, seen := p.lat[page]; !seen {
		p.order = append(p.order, page)
	}
	p.lat[page] = append(p.lat[page], d)
	if !ok {
		p.bad[page]++
	}
}

func (p *pageStats) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lat {
		n += len(l)
	}
	return n
}

func (p *pageStats) failed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, b := range p.bad {
		n += b
	}
	return n
}

func (p *pageStats) print() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, page := range p.order {
		l := slices.Sorted(slices.Values(p.lat[page]))
		shown := page
		if len(shown) > 60 {
			shown = shown[:57] + "..."
		}
		fmt.Printf("| `%s` | %d | %d | %.2f | %.2f | %.2f |\n", shown, len(l), p.bad[page], ms(quantile(l, 0.5)), ms(quantile(l, 0.99)), ms(l[len(l)-1]))
	}
}

// status reads VmRSS and VmHWM of pid, in KiB.
func status(pid int) (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	check(err)
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		x, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = x
		case "VmHWM":
			hwm = x
		}
	}
	return rss, hwm
}

func sampleRSS(ctx context.Context, pid int, peak *atomic.Int64) {
	for ctx.Err() == nil {
		rss, _ := status(pid)
		if rss > peak.Load() {
			peak.Store(rss)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// memRow prints a row of the memory table; a given rss replaces the
// current one.
func memRow(step string, pid int, rssOverride ...int64) {
	rss, hwm := status(pid)
	if len(rssOverride) > 0 && rssOverride[0] > 0 {
		rss = rssOverride[0]
	}
	fmt.Printf("| %s | %.1f | %.1f | %s |\n", step, float64(rss)/1024, float64(hwm)/1024, loadavg())
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func dbSizes() string {
	var parts []string
	for _, f := range []string{"stairhook.db", "stairhook.db-wal"} {
		if fi, err := os.Stat(filepath.Join(*dir, f)); err == nil {
			parts = append(parts, fmt.Sprintf("%s %.1f MiB", f, float64(fi.Size())/(1<<20)))
		}
	}
	return strings.Join(parts, ", ")
}

// quantile returns the q-quantile of sorted (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func median(d []time.Duration) time.Duration {
	return quantile(slices.Sorted(slices.Values(d)), 0.5)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func check(err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}
