package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeRaw writes go test benchmark output with rounds copies of each line,
// ns/op multiplied by 1, 1.01, 0.99, … so medians are the given figures.
func writeRaw(t *testing.T, lines []string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("goos: linux\ngoarch: amd64\npkg: github.com/stairhook/stairhook/bench\n")
	for range 6 {
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
	}
	p := filepath.Join(t.TempDir(), "raw.txt")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func verifyLine(size, lib string, ns float64, allocs int) string {
	return fmt.Sprintf("BenchmarkVerify/size=%s/lib=%s-2 \t 1000\t %g ns/op\t 0 B/op\t %d allocs/op", size, lib, ns, allocs)
}

// turnsLine is a BenchmarkInterleaved result: lib, ns/op pairs.
func turnsLine(size string, libNS ...any) string {
	l := fmt.Sprintf("BenchmarkInterleaved/size=%s-2 \t 100\t 1000000 ns/op", size)
	for i := 0; i < len(libNS); i += 2 {
		l += fmt.Sprintf("\t %v %s-ns/op", libNS[i+1], libNS[i])
	}
	return l
}

func TestTargets(t *testing.T) {
	verify := writeRaw(t, []string{
		verifyLine("1KiB", ourV1, 9999, 0),
		verifyLine("1KiB", "svix", 1, 20),
		turnsLine("1KiB", ourV1, 700, "svix", 2000, "stripe", 1500, baseline, 600),
		turnsLine("1MiB", ourV1, 800000, "stripe", 790000, baseline, 780000),
	})
	http := writeRaw(t, []string{"BenchmarkHTTP-2 \t 100\t 5000 ns/op\t 20000 bare-req/s\t 17000 mw-req/s\t 0.85 mw/bare-throughput"})
	v, err := readRaw(verify)
	if err != nil {
		t.Fatal(err)
	}
	h, err := readRaw(http)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]target{}
	for _, tg := range targets(v, h) {
		got[tg.key] = tg
	}
	for _, tc := range []struct {
		key      string
		measured float64
		met      bool
	}{
		{"verify-1KiB-vs-peer", 700.0 / 1500, false}, // stripe is the fastest peer
		{"verify-1KiB-vs-baseline", 700.0 / 600, true},
		{"verify-1KiB-allocs", 0, true},
		{"verify-1MiB-vs-baseline", 800000.0 / 780000, true},
		{"http-throughput", 0.85, false},
	} {
		tg, ok := got[tc.key]
		if !ok || !tg.known {
			t.Errorf("%s: not evaluated", tc.key)
			continue
		}
		if d := tg.measured - tc.measured; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s: measured %v, want %v", tc.key, tg.measured, tc.measured)
		}
		if tg.met() != tc.met {
			t.Errorf("%s: met = %v, want %v (%s)", tc.key, tg.met(), tc.met, tg.verdict())
		}
	}
	if !strings.Contains(got["verify-1KiB-vs-peer"].note, "stripe") {
		t.Errorf("fastest peer note %q does not name stripe", got["verify-1KiB-vs-peer"].note)
	}
	if v := got["http-throughput"].verdict(); !strings.Contains(v, "missed** by 6%") {
		t.Errorf("http verdict %q does not say by how much", v)
	}

	var b strings.Builder
	if err := report(&b, options{}, v, h, nil, targets(v, h)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 1KiB | stripe (1.50 µs) | 0.47× (0.47–0.47) | 1.17× (1.17–1.17) |", "**0.850×**", "cannot be met by any implementation"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestTargetsUnmeasured(t *testing.T) {
	for _, tg := range targets(samples{}, samples{}) {
		if tg.known || tg.verdict() != "not measured" {
			t.Errorf("%s: %v with no results", tg.key, tg.verdict())
		}
	}
}

// TestRatioPairsRounds checks that ratios are taken round by round: a load
// spike that slows both benchmarks of one round must cancel out.
func TestRatioPairsRounds(t *testing.T) {
	v := samples{
		turnsKey("1KiB"): {timeUnit(ourV1): {1, 3, 9, 2, 4, 6}, timeUnit(baseline): {2, 6, 18, 4, 8, 12}},
		turnsKey("1MiB"): {timeUnit(ourV1): {1, 2}, timeUnit(baseline): {1}},
	}
	// Summaries of the single benchmarks must leave the round order alone.
	if s, _ := v.timeStat("1KiB", ourV1); s.median != 3.5 {
		t.Errorf("median = %v, want 3.5", s.median)
	}
	r, ok := ratio(v, "1KiB", ourV1, baseline)
	if !ok || r.median != 0.5 || r.n != 6 {
		t.Errorf("ratio = %+v, %v; want a median of exactly 0.5 over 6 rounds", r, ok)
	}
	if _, ok := ratio(v, "1MiB", ourV1, baseline); ok {
		t.Error("ratio of samples with different round counts was accepted")
	}
}

// The inbox's targets pair each round's accept rate with that round's
// commit limit, and say "not measured" for nothing else: the section and
// the targets appear only with inbox results.
func TestInboxTargets(t *testing.T) {
	raw := writeRaw(t, []string{
		"BenchmarkCommitLimit/sqlite-2 \t 3000\t 300000 ns/op\t 3000 commits/s",
		"BenchmarkCommitLimit/postgres-2 \t 3000\t 300000 ns/op\t 4000 commits/s",
		"BenchmarkAccept/sqlite/accept-2 \t 3000\t 300000 ns/op\t 1800 events/s\t 10 p50-2xx-ms\t 30 p99-2xx-ms",
		"BenchmarkAccept/sqlite/all-2 \t 3000\t 300000 ns/op\t 1200 events/s\t 12 p50-2xx-ms\t 60 p99-2xx-ms",
		"BenchmarkAccept/postgres/accept-2 \t 3000\t 300000 ns/op\t 1000 events/s\t 20 p50-2xx-ms\t 80 p99-2xx-ms",
		"BenchmarkAcceptToDone/sqlite-2 \t 1000\t 5000000 ns/op\t 12 p50-done-ms\t 40 p99-done-ms",
	})
	in, err := readRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]target{}
	for _, tg := range inboxTargets(in) {
		got[tg.key] = tg
	}
	for _, tc := range []struct {
		key       string
		measured  float64
		met, know bool
	}{
		{"inbox-sqlite-ratio", 0.6, true, true},
		{"inbox-sqlite-p99", 30, true, true},
		{"inbox-postgres-ratio", 0.25, false, true},
		{"inbox-postgres-p99", 80, false, true},
	} {
		tg := got[tc.key]
		if tg.known != tc.know || (tc.know && (tg.measured < tc.measured*0.99 || tg.measured > tc.measured*1.01)) {
			t.Errorf("%s: measured %v (known %v), want %v", tc.key, tg.measured, tg.known, tc.measured)
		}
		if tg.met() != tc.met {
			t.Errorf("%s: met = %v, want %v", tc.key, tg.met(), tc.met)
		}
	}
	if v := got["inbox-postgres-p99"].verdict(); !strings.Contains(v, "80.0 ms where under 50 ms") {
		t.Errorf("p99 verdict %q", v)
	}
	var b strings.Builder
	inboxReport(&b, options{inboxN: "3000x"}, in)
	for _, want := range []string{"| sqlite | accept | 1800 | 10.0 ms | 30.0 ms | 3000 | 0.60×", "| postgres | all | – |", "| sqlite | 12.0 ms | 40.0 ms |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("inbox report lacks %q:\n%s", want, b.String())
		}
	}
	if inboxTargets(nil) != nil {
		t.Error("targets without inbox results")
	}
}
