// Command benchreport turns the raw output of bench/run into BENCHMARKS.md:
// tables of medians, the ratios of this module's verifier to the fastest
// peer and to the SHA-256 baseline, the targets of the benchmark issue met or
// missed, the HTTP comparison, benchstat's own tables and, for missed
// targets, CPU profile summaries.
//
// With -missed it only evaluates the targets and prints, one per line, a
// key and a -test.bench pattern for every missed one, so that bench/run
// can profile those before writing the report.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"
)

// Names as they appear in the benchmarks of package bench.
var (
	sizes    = []string{"256B", "1KiB", "64KiB", "1MiB"}
	ourV1    = "stairhook-v1"
	ourBody  = "stairhook-body"
	baseline = "baseline-sha256"
	// peers are the published libraries; handwritten is the reference a
	// receiver would write by hand with crypto/hmac.
	peers       = []string{"svix", "standardwebhooks", "stripe", "goplayground-github"}
	handwritten = "handwritten-hmac"
	libOrder    = []string{ourV1, ourBody, "svix", "standardwebhooks", "stripe", "goplayground-github", handwritten, baseline}
	libRole     = map[string]string{
		ourV1: "ours", ourBody: "ours (legacy body mode)", "svix": "peer", "standardwebhooks": "peer",
		"stripe": "peer", "goplayground-github": "peer (includes JSON decode)", handwritten: "reference", baseline: "baseline",
	}
)

type options struct {
	verifyRaw, turnsRaw, httpRaw string
	verifyStat, httpStat         string
	turnsStat, turnsTime         string
	profiles                     string
	out, missedOut               string
	goVersion, cpu, cores, when  string
	commit, treeState, versions  string
	rounds, benchtime, httpTimes string
	elapsed                      string
	inboxRaw, inboxStat, inboxN  string
}

func main() {
	var o options
	flag.StringVar(&o.verifyRaw, "verify", "", "raw go test output of BenchmarkVerify, all rounds")
	flag.StringVar(&o.turnsRaw, "interleaved", "", "raw go test output of BenchmarkInterleaved, all rounds")
	flag.StringVar(&o.httpRaw, "http", "", "raw go test output of BenchmarkHTTP, all rounds")
	flag.StringVar(&o.verifyStat, "verify-benchstat", "", "benchstat output for the Verify results")
	flag.StringVar(&o.httpStat, "http-benchstat", "", "benchstat output for the HTTP results")
	flag.StringVar(&o.turnsStat, "interleaved-benchstat", "", "benchstat output for the BenchmarkInterleaved results")
	flag.StringVar(&o.turnsTime, "interleaved-benchtime", "", "-benchtime of BenchmarkInterleaved")
	flag.StringVar(&o.profiles, "profiles", "", "folder of pprof -top summaries, <key>.txt, for missed targets")
	flag.StringVar(&o.out, "o", "", "write the report here")
	flag.StringVar(&o.missedOut, "missed", "", "only evaluate the targets; write the missed ones here as key<TAB>pattern lines")
	flag.StringVar(&o.goVersion, "go", "", "go version")
	flag.StringVar(&o.cpu, "cpu", "", "CPU model")
	flag.StringVar(&o.cores, "cores", "", "core count")
	flag.StringVar(&o.when, "date", "", "when the run started (UTC)")
	flag.StringVar(&o.elapsed, "elapsed", "", "how long the run took")
	flag.StringVar(&o.commit, "commit", "", "commit measured")
	flag.StringVar(&o.treeState, "tree", "", "state of the working tree measured")
	flag.StringVar(&o.versions, "versions", "", "file listing the peer module versions")
	flag.StringVar(&o.rounds, "rounds", "", "number of rounds")
	flag.StringVar(&o.benchtime, "benchtime", "", "-benchtime of BenchmarkVerify")
	flag.StringVar(&o.httpTimes, "http-benchtime", "", "-benchtime of BenchmarkHTTP")
	flag.StringVar(&o.inboxRaw, "inbox", "", "raw go test output of the durable inbox's benchmarks, all rounds (optional)")
	flag.StringVar(&o.inboxStat, "inbox-benchstat", "", "benchstat output for the inbox results")
	flag.StringVar(&o.inboxN, "inbox-benchtime", "", "-benchtime of the inbox benchmarks")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

// samples maps a benchmark (base name and sub-benchmark keys) and unit to
// the values of every round.
type samples map[string]map[string][]float64

func key(base string, kv ...string) string { return base + "|" + strings.Join(kv, "|") }

func readRaw(path string) (samples, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := samples{}
	r := benchfmt.NewReader(f, filepath.Base(path))
	for r.Scan() {
		res, ok := r.Result().(*benchfmt.Result)
		if !ok {
			continue
		}
		base, parts := res.Name.Parts()
		var kv []string
		for _, p := range parts {
			if p[0] == '/' {
				kv = append(kv, string(p[1:]))
			}
		}
		k := key(strings.TrimPrefix(string(base), "Benchmark"), kv...)
		if s[k] == nil {
			s[k] = map[string][]float64{}
		}
		for _, v := range res.Values {
			// Units as benchfmt tidies them: ns/op becomes sec/op.
			s[k][v.Unit] = append(s[k][v.Unit], v.Value)
		}
	}
	return s, r.Err()
}

// stat is the median of a sample with benchstat's 95% confidence interval.
type stat struct {
	median, lo, hi float64
	n              int
}

func (s samples) stat(k, unit string) (stat, bool) {
	vals := s[k][unit]
	if len(vals) == 0 {
		return stat{}, false
	}
	// NewSample sorts its argument: copy, so the values keep their round
	// order for ratio.
	sum := benchmath.AssumeNothing.Summary(benchmath.NewSample(slices.Clone(vals), &benchmath.DefaultThresholds), 0.95)
	return stat{median: sum.Center, lo: sum.Lo, hi: sum.Hi, n: len(vals)}, true
}

// verifyKey names a sub-benchmark of BenchmarkVerify: one library alone,
// the source of the allocation figures and of benchstat's tables.
func verifyKey(size, lib string) string { return key("Verify", "size="+size, "lib="+lib) }

// turnsKey names a sub-benchmark of BenchmarkInterleaved, where every
// library takes turns on one input: the source of the times and ratios, as
// it is the one robust against a changing load. Each library's time is the
// unit timeUnit(lib).
func turnsKey(size string) string { return key("Interleaved", "size="+size) }

func timeUnit(lib string) string { return lib + "-sec/op" }

// timeStat is the median time per verification of lib at size.
func (s samples) timeStat(size, lib string) (stat, bool) {
	return s.stat(turnsKey(size), timeUnit(lib))
}

// target is one goal of the benchmark issue with what was measured.
type target struct {
	key, pattern string // for profiling a miss
	what         string
	measured     float64
	limit        float64
	atMost       bool // measured must be <= limit (else >=)
	unit         string
	note         string
	known        bool
}

func (t target) met() bool {
	if t.atMost {
		return t.measured <= t.limit
	}
	return t.measured >= t.limit
}

func (t target) verdict() string {
	if !t.known {
		return "not measured"
	}
	if t.met() {
		return "**met**"
	}
	if t.unit == "allocs/op" {
		return fmt.Sprintf("**missed** (%g allocs/op)", t.measured)
	}
	if t.unit == "ms" {
		return fmt.Sprintf("**missed** (%.1f ms where under %.0f ms is required)", t.measured, t.limit)
	}
	if t.atMost {
		return fmt.Sprintf("**missed** by %.0f%% (%.2f× where %.2f× is allowed)", (t.measured/t.limit-1)*100, t.measured, t.limit)
	}
	return fmt.Sprintf("**missed** by %.0f%% (%.2f× where %.2f× is required)", (1-t.measured/t.limit)*100, t.measured, t.limit)
}

func verifyPattern(size, lib string) string {
	return "^BenchmarkVerify$/^size=" + size + "$/^lib=" + lib + "$"
}

// fastestPeer returns the peer library with the lowest median sec/op at size.
func fastestPeer(v samples, size string) (string, stat, bool) {
	best, bestStat, found := "", stat{}, false
	for _, p := range peers {
		s, ok := v.timeStat(size, p)
		if ok && (!found || s.median < bestStat.median) {
			best, bestStat, found = p, s, true
		}
	}
	return best, bestStat, found
}

// ratio is the time of library a over that of b at size, paired by run:
// the median (and 95% CI) of the per-run ratios of BenchmarkInterleaved,
// where both took turns under the same load.
func ratio(v samples, size, a, b string) (stat, bool) {
	return pairedRatio(v[turnsKey(size)][timeUnit(a)], v[turnsKey(size)][timeUnit(b)])
}

// pairedRatio is the median (and 95% CI) of a[i]/b[i]: two figures taken
// in the same run, under the same load.
func pairedRatio(a, b []float64) (stat, bool) {
	if len(a) == 0 || len(a) != len(b) {
		return stat{}, false
	}
	rs := make([]float64, len(a))
	for i := range a {
		if b[i] == 0 {
			return stat{}, false
		}
		rs[i] = a[i] / b[i]
	}
	sum := benchmath.AssumeNothing.Summary(benchmath.NewSample(rs, &benchmath.DefaultThresholds), 0.95)
	return stat{median: sum.Center, lo: sum.Lo, hi: sum.Hi, n: len(rs)}, true
}

func (s stat) ci() string {
	return fmt.Sprintf("95%% CI %.3f–%.3f over %d rounds", s.lo, s.hi, s.n)
}

func targets(v, h samples) []target {
	var ts []target
	t := target{key: "verify-1KiB-vs-peer", pattern: verifyPattern("1KiB", ourV1), what: "Verify (v1) at 1 KiB ≤ 0.35× the fastest peer", limit: 0.35, atMost: true, unit: "×"}
	if p, _, ok := fastestPeer(v, "1KiB"); ok {
		if r, ok := ratio(v, "1KiB", ourV1, p); ok {
			t.measured, t.known = r.median, true
			t.note = "fastest peer: " + p + "; " + r.ci()
		}
	}
	ts = append(ts, t)

	t = target{key: "verify-1KiB-vs-baseline", pattern: verifyPattern("1KiB", ourV1), what: "Verify (v1) at 1 KiB ≤ 1.25× the baseline", limit: 1.25, atMost: true, unit: "×"}
	if r, ok := ratio(v, "1KiB", ourV1, baseline); ok {
		t.measured, t.known, t.note = r.median, true, r.ci()
	}
	ts = append(ts, t)

	t = target{key: "verify-1KiB-allocs", pattern: verifyPattern("1KiB", ourV1), what: "Verify (v1) at 1 KiB: 0 allocs/op", limit: 0, atMost: true, unit: "allocs/op"}
	if s, ok := v.stat(verifyKey("1KiB", ourV1), "allocs/op"); ok {
		t.measured, t.known = s.median, true
	}
	ts = append(ts, t)

	t = target{key: "verify-1MiB-vs-baseline", pattern: verifyPattern("1MiB", ourV1), what: "Verify (v1) at 1 MiB ≤ 1.05× the baseline", limit: 1.05, atMost: true, unit: "×"}
	if r, ok := ratio(v, "1MiB", ourV1, baseline); ok {
		t.measured, t.known, t.note = r.median, true, r.ci()
	}
	ts = append(ts, t)

	t = target{key: "http-throughput", pattern: "^BenchmarkHTTP$", what: "HTTP over loopback: middleware throughput ≥ 0.9× the bare handler's", limit: 0.9, unit: "×"}
	if s, ok := h.stat(key("HTTP"), "mw/bare-throughput"); ok {
		t.measured, t.known = s.median, true
		t.note = fmt.Sprintf("median of %d interleaved runs; 95%% CI %.3f–%.3f", s.n, s.lo, s.hi)
	}
	ts = append(ts, t)
	return ts
}

func run(o options) error {
	if o.verifyRaw == "" || o.turnsRaw == "" || o.httpRaw == "" {
		return errors.New("-verify, -interleaved and -http are required")
	}
	v, err := readRaw(o.verifyRaw)
	if err != nil {
		return err
	}
	turns, err := readRaw(o.turnsRaw)
	if err != nil {
		return err
	}
	for k, units := range turns {
		v[k] = units
	}
	h, err := readRaw(o.httpRaw)
	if err != nil {
		return err
	}
	var in samples
	if o.inboxRaw != "" {
		if in, err = readRaw(o.inboxRaw); err != nil {
			return err
		}
	}
	ts := append(targets(v, h), inboxTargets(in)...)
	if o.missedOut != "" {
		var b strings.Builder
		for _, t := range ts {
			if t.known && !t.met() {
				fmt.Fprintf(&b, "%s\t%s\n", t.key, t.pattern)
			}
		}
		return os.WriteFile(o.missedOut, []byte(b.String()), 0o644)
	}
	if o.out == "" {
		return errors.New("-o or -missed is required")
	}
	var b strings.Builder
	if err := report(&b, o, v, h, in, ts); err != nil {
		return err
	}
	return os.WriteFile(o.out, []byte(b.String()), 0o644)
}

func readOptional(path string) string {
	if path == "" {
		return ""
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimRight(string(data), "\n")
}

// ns formats seconds as a duration in the most readable unit.
func ns(sec float64) string {
	switch d := sec * 1e9; {
	case d >= 1e6:
		return fmt.Sprintf("%.2f ms", d/1e6)
	case d >= 1e3:
		return fmt.Sprintf("%.2f µs", d/1e3)
	default:
		return fmt.Sprintf("%.0f ns", d)
	}
}

func report(w io.Writer, o options, v, h, in samples, ts []target) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# Benchmarks\n\n")
	p("Written by `bench/run`; do not edit by hand, run it again. ")
	p("The benchmarks live in the separate module `bench/` (`bench/*_test.go`), so the peer libraries never enter the dependencies of `github.com/stairhook/stairhook`.\n\n")
	p("- Measured: commit `%s`, %s.\n", o.commit, o.treeState)
	p("- Run: %s, %s in all.\n", o.when, o.elapsed)
	p("- Machine: %s; CPU %s; %s cores (GOMAXPROCS %s).\n", o.goVersion, o.cpu, o.cores, o.cores)
	p("- Reproduce: `bench/run` from the repository root (writes this file). `bench/run --smoke` only vets the bench module, runs its tests and each benchmark once, as `.ci/run` does.\n")
	p("- Method: the machine's two cores are shared with other jobs while it runs, and their load changes from one second to the next, so results taken seconds apart are not comparable. Hence:\n")
	p("  - %s rounds, each running, from one compiled test binary, `BenchmarkVerify` (every library and size on its own, `-benchtime=%s`), `BenchmarkInterleaved` (`-benchtime=%s` per size) and `BenchmarkHTTP` (`-benchtime=%s`), so every benchmark is sampled over the whole run rather than in one stretch;\n", o.rounds, o.benchtime, o.turnsTime, o.httpTimes)
	p("  - the times and ratios of the Verify tables and targets come from `BenchmarkInterleaved`, where all libraries take turns of about 200 µs on one input, so each sees the same load; a library's time in a run is the median over its turns (a turn in which the OS ran another job is left out, not averaged in), each turn starts with an untimed call (so no library pays for the caches its predecessor emptied), and the garbage collector runs between rounds of turns, untimed (so no library pays for another's garbage; the allocating peers do not pay for their own either, which can only flatter them); allocations come from `BenchmarkVerify`;\n")
	p("  - `BenchmarkHTTP` has the two servers take turns of 500 requests within each run;\n")
	p("  - every figure is a median over the rounds, every ratio the median of the per-run ratios, with benchstat's 95%% confidence interval (the benchstat tables at the end give all of them).\n\n")

	p("## Targets\n\n| target | measured | verdict | note |\n| --- | --- | --- | --- |\n")
	for _, t := range ts {
		m := "–"
		if t.known {
			switch t.unit {
			case "allocs/op":
				m = fmt.Sprintf("%g allocs/op", t.measured)
			case "ms":
				m = fmt.Sprintf("%.1f ms", t.measured)
			default:
				m = fmt.Sprintf("%.3f×", t.measured)
			}
		}
		p("| %s | %s | %s | %s |\n", t.what, m, t.verdict(), t.note)
	}
	p("\n")
	if vs, ok := v.timeStat("1KiB", baseline); ok {
		if peer, ps, ok := fastestPeer(v, "1KiB"); ok {
			p("At 1 KiB on this machine the fastest peer (%s) takes %s and SHA-256 of the signed bytes alone %s (the issue assumed 3.6–5.6 µs and about 0.85 µs). ", peer, ns(ps.median), ns(vs.median))
			if limit := 0.35 * ps.median; limit < vs.median {
				p("0.35× that peer is %s, less than the hashing every v1 check must do (%.2f× the baseline): here that target cannot be met by any implementation, and the 1.25× baseline target is the binding one.\n\n", ns(limit), limit/vs.median)
			} else {
				p("0.35× that peer is %s, %.2f× the baseline.\n\n", ns(limit), limit/vs.median)
			}
		}
	}

	p("## Verify: time per successful verification (median)\n\n")
	p("Identical inputs for every library: the same 32 key bytes, id, timestamp (taken when each benchmark starts, since most peers check it against `time.Now`) and JSON body; each library gets the signature in its own header format, computed independently of it, and every benchmark first checks that the library accepts the input (and a test checks that each rejects a tampered body). ")
	p("Times from `BenchmarkInterleaved`, allocations per verification from `BenchmarkVerify`.\n\n")
	p("| library | role |")
	for _, s := range sizes {
		p(" %s |", s)
	}
	p("\n| --- | --- |%s\n", strings.Repeat(" ---: |", len(sizes)))
	for _, lib := range libOrder {
		p("| %s | %s |", lib, libRole[lib])
		for _, s := range sizes {
			st, ok := v.timeStat(s, lib)
			if !ok {
				p(" – |")
				continue
			}
			cell := ns(st.median)
			if a, ok := v.stat(verifyKey(s, lib), "allocs/op"); ok {
				cell += fmt.Sprintf(" (%g allocs)", a.median)
			}
			p(" %s |", cell)
		}
		p("\n")
	}
	p("\n### Ratios (lower is better)\n\n")
	p("Each ratio is the median over the runs of `BenchmarkInterleaved` of the ratio within the run, with its 95%% confidence interval in parentheses.\n\n")
	p("| size | fastest peer | v1 / fastest peer | v1 / baseline | v1 / hand-written | body mode / fastest peer | body mode / baseline |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, s := range sizes {
		peer, ps, ok := fastestPeer(v, s)
		if !ok {
			continue
		}
		cell := func(lib, other string) string {
			r, ok := ratio(v, s, lib, other)
			if !ok || math.IsNaN(r.median) {
				return "–"
			}
			return fmt.Sprintf("%.2f× (%.2f–%.2f)", r.median, r.lo, r.hi)
		}
		p("| %s | %s (%s) | %s | %s | %s | %s | %s |\n", s, peer, ns(ps.median), cell(ourV1, peer), cell(ourV1, baseline), cell(ourV1, handwritten), cell(ourBody, peer), cell(ourBody, baseline))
	}
	p("\nThe baseline hashes the v1 signed bytes (id.timestamp.body); the body mode MACs the body alone, a few dozen bytes less, so its ratio to the baseline is slightly flattered at the small sizes.\n\n")

	p("## HTTP over loopback (1 KiB bodies)\n\n")
	p("Two `net/http` servers on 127.0.0.1, real sockets: one with `verify`'s Middleware (memory store sized for every id) around a handler that reads the body, one with the same handler bare. ")
	p("One load for both: vegeta's attacker as a library at maximum throughput with a fixed 8 workers and 8 keep-alive connections per server, every request with its own id and signature prepared before the run, client and servers in one process on the same two cores. ")
	p("Within each run the two servers take turns of 500 requests (tens of milliseconds each), so both see the same load from the rest of the machine; each run reports both, and the ratio is taken per run.\n\n")
	p("| server | requests/s | p50 latency | p99 latency |\n| --- | ---: | ---: | ---: |\n")
	for _, srv := range []struct{ name, prefix string }{{"bare handler", "bare"}, {"with Middleware", "mw"}} {
		rps, ok1 := h.stat(key("HTTP"), srv.prefix+"-req/s")
		p50, ok2 := h.stat(key("HTTP"), srv.prefix+"-p50-us")
		p99, ok3 := h.stat(key("HTTP"), srv.prefix+"-p99-us")
		if !ok1 || !ok2 || !ok3 {
			p("| %s | – | – | – |\n", srv.name)
			continue
		}
		p("| %s | %.0f | %.0f µs | %.0f µs |\n", srv.name, rps.median, p50.median, p99.median)
	}
	if r, ok := h.stat(key("HTTP"), "mw/bare-throughput"); ok {
		p("| **ratio** middleware / bare | **%.3f×** (95%% CI %.3f–%.3f, %d runs) | | |\n", r.median, r.lo, r.hi, r.n)
	}
	p("\n")

	if o.profiles != "" {
		var missed []target
		for _, t := range ts {
			if t.known && !t.met() {
				missed = append(missed, t)
			}
		}
		if len(missed) > 0 {
			p("## Where the time goes (missed targets)\n\n")
			done := map[string]bool{}
			for _, t := range missed {
				prof := readOptional(filepath.Join(o.profiles, t.key+".txt"))
				if prof == "" || done[t.pattern] {
					continue
				}
				done[t.pattern] = true
				var whats []string
				for _, m := range missed {
					if m.pattern == t.pattern {
						whats = append(whats, m.what)
					}
				}
				p("### `%s`\n\nMissed: %s. CPU profile (`-cpuprofile`, then `go tool pprof -top`):\n\n```\n%s\n```\n\n", t.pattern, strings.Join(whats, "; "), prof)
			}
		}
	}

	inboxReport(w, o, in)

	p("## Peers\n\n")
	p("Module versions measured (all served by the Go module proxy):\n\n```\n%s\n```\n\n", readOptional(o.versions))
	p("- **svix** (`github.com/svix/svix-webhooks/go`, package `svix`): `(*Webhook).Verify` with `svix-*` headers; checks the timestamp against `time.Now`.\n")
	p("- **standardwebhooks** (`github.com/standard-webhooks/standard-webhooks/libraries/go`): `(*Webhook).Verify` with `webhook-*` headers; checks against `time.Now`.\n")
	p("- **stripe** (`github.com/stripe/stripe-go/v82/webhook`): `ValidatePayload` with its own `t=…,v1=<hex>` header, HMAC over timestamp + \".\" + body (no id), the same key bytes passed as the secret string; checks against `time.Now`.\n")
	p("- **goplayground-github** (`github.com/go-playground/webhooks/v6/github`): `(Webhook).Parse` takes an `*http.Request`, reads its body, checks `X-Hub-Signature-256: sha256=<hex>` and then decodes the JSON payload (here a ping event): its check cannot run alone. The request is built once and only its body reader is reset per call, so no socket or `httptest` cost is counted, but the body copy and the JSON decode are; it is listed for completeness and is never the fastest peer.\n")
	p("- **handwritten-hmac**: the GitHub-style `sha256=<hex>` body check a receiver writes with `crypto/hmac` (`hmac.New` per request, hex decode, `hmac.Equal`). A reference, not a library: it does less than any v1 check (no id, no timestamp, no header parsing), so it is not counted as a peer in the targets.\n")
	p("- **baseline-sha256**: `sha256.Sum256` over the v1 signed bytes, built before the run: the least work any v1 verification must do.\n")
	p("- **stairhook-v1** / **stairhook-body**: `verify.Verifier.Verify` with `x-staircase-*` headers (clock fixed at the signed time), and with `AllowBodySignature` on a `sha256=<hex>` body signature.\n\n")

	p("## benchstat\n\n`go tool benchstat` (pinned in `bench/go.mod`) over all rounds.\n\n")
	p("### BenchmarkInterleaved\n\nOne column per library (`<lib>-sec/op`); `sec/op` is one turn of every library and means nothing by itself.\n\n```\n%s\n```\n\n", readOptional(o.turnsStat))
	p("### BenchmarkVerify\n\nEach library and size alone, one after the other within each round: these times are more exposed to the machine's changing load than the interleaved ones.\n\n```\n%s\n```\n\n", readOptional(o.verifyStat))
	p("### BenchmarkHTTP\n\n```\n%s\n```\n", readOptional(o.httpStat))
	return nil
}
