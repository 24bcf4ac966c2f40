// Package bench compares the cost of verifying a signed webhook with
// stairhook's verify package against the libraries a receiver would pick
// instead, and against the hardware limit: SHA-256 over the same signed
// bytes.
//
// It is a separate module, so the peers never enter the dependencies of
// github.com/stairhook/stairhook. Everything lives in the test files:
// BenchmarkVerify (per library and body size, for allocations and a
// per-library profile), BenchmarkInterleaved (every library taking short
// turns on one input, so all see the same machine load: the times and
// ratios in BENCHMARKS.md come from it) and BenchmarkHTTP (the
// verify.Middleware against a bare handler over loopback sockets, taking
// turns the same way). The script bench/run runs them, summarises them with benchstat and writes
// BENCHMARKS.md at the repository root; bench/run --smoke runs each
// benchmark once, as CI does.
package bench
