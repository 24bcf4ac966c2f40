package main

import (
	"fmt"
	"io"
)

// The durable inbox's benchmarks (package receiver and receiver/queue of
// the root module): BenchmarkAccept/<db>/<role>, BenchmarkCommitLimit/<db>,
// BenchmarkAcceptToDone/<db> and BenchmarkWork/<db>, one of each per round.

// inboxDBs are the databases the inbox benchmarks run on.
var inboxDBs = []string{"sqlite", "postgres"}

// inboxRoles are the roles of BenchmarkAccept: accept answers only, all
// also works the jobs in the same process.
var inboxRoles = []string{"accept", "all"}

// acceptRatio is the accept path's events/s over the database's single-row
// commits/s, paired by round: both ran in the same round, one after the
// other, under the same load.
func acceptRatio(in samples, db, role string) (stat, bool) {
	return pairedRatio(in[key("Accept", db, role)]["events/s"], in[key("CommitLimit", db)]["commits/s"])
}

// inboxTargets are the targets for the accept path: at least 0.5×
// the database's commit limit, and p99 under 50 ms, on each database,
// measured on an accept-only instance (the accept path alone).
func inboxTargets(in samples) []target {
	if len(in) == 0 {
		return nil
	}
	var ts []target
	for _, db := range inboxDBs {
		pattern := "^BenchmarkAccept$/^" + db + "$/^accept$"
		t := target{key: "inbox-" + db + "-ratio", pattern: pattern, unit: "×", limit: 0.5,
			what: "Accept path on " + db + " (concurrency 32, 1 KiB, two sinks) ≥ 0.5× the database's single-row commits/s"}
		if r, ok := acceptRatio(in, db, "accept"); ok {
			t.measured, t.known, t.note = r.median, true, r.ci()
		}
		ts = append(ts, t)
		t = target{key: "inbox-" + db + "-p99", pattern: pattern, unit: "ms", limit: 50, atMost: true,
			what: "Accept path on " + db + ": p99 to the 2xx < 50 ms"}
		if s, ok := in.stat(key("Accept", db, "accept"), "p99-2xx-ms"); ok {
			t.measured, t.known = s.median, true
			t.note = fmt.Sprintf("median over %d rounds; 95%% CI %.1f–%.1f ms", s.n, s.lo, s.hi)
		}
		ts = append(ts, t)
	}
	return ts
}

// inboxReport writes the section of the inbox benchmarks.
func inboxReport(w io.Writer, o options, in samples) {
	if len(in) == 0 {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	med := func(k, unit, format string) string {
		if s, ok := in.stat(k, unit); ok {
			return fmt.Sprintf(format, s.median)
		}
		return "–"
	}
	p("## The durable inbox (package receiver)\n\n")
	p("`stairhook serve`'s accept path over loopback HTTP: %s requests per sub-benchmark per round at concurrency 32, each a new 1 KiB `churn_risk` event signed before the clock starts, with two no-op sinks; the client runs in the same process. ", o.inboxN)
	p("Role `accept` answers only (verify, one transaction with the event and its two jobs, shared by concurrent requests, then 202); role `all` also works the jobs in the same process, as a lone `serve` does. ")
	p("The limit beside it is the same database, at the same durability (SQLite: WAL, `synchronous=FULL`; Postgres 15 with fsync on, on this machine), committing one small row per transaction at the same concurrency, measured in the same round; the ratio is the median of the per-round ratios. ")
	p("Reproduce one round: `go test -run '^$' -bench 'BenchmarkCommitLimit|BenchmarkAccept' -benchtime %s ./receiver` and `go test -run '^$' -bench Work ./receiver/queue`.\n\n", o.inboxN)
	p("| database | role | events/s | p50 to the 2xx | p99 to the 2xx | single-row commits/s | events/s ÷ commits/s |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, db := range inboxDBs {
		for _, role := range inboxRoles {
			k := key("Accept", db, role)
			r := "–"
			if s, ok := acceptRatio(in, db, role); ok {
				r = fmt.Sprintf("%.2f× (%.2f–%.2f)", s.median, s.lo, s.hi)
			}
			p("| %s | %s | %s | %s | %s | %s | %s |\n", db, role, med(k, "events/s", "%.0f"),
				med(k, "p50-2xx-ms", "%.1f ms"), med(k, "p99-2xx-ms", "%.1f ms"),
				med(key("CommitLimit", db), "commits/s", "%.0f"), r)
		}
	}
	p("\nFrom acceptance to the second sink's success, at a steady 100 events/s with no-op sinks (`BenchmarkAcceptToDone`, role all), and the rate at which one instance's 8 workers drain a backlog of two-job events (`BenchmarkWork` in receiver/queue):\n\n")
	p("| database | p50 accept → done | p99 accept → done | worker throughput |\n| --- | ---: | ---: | ---: |\n")
	for _, db := range inboxDBs {
		k := key("AcceptToDone", db)
		p("| %s | %s | %s | %s |\n", db, med(k, "p50-done-ms", "%.1f ms"), med(k, "p99-done-ms", "%.1f ms"),
			med(key("Work", db), "jobs/s", "%.0f jobs/s"))
	}
	p("\n```\n%s\n```\n\n", readOptional(o.inboxStat))
}
