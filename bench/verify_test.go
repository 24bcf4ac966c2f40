package bench

import (
	"runtime"
	"runtime/debug"
	"slices"
	"testing"
	"time"
)

// BenchmarkVerify measures one successful verification per operation, for
// every library and body size on identical inputs. Each sub-benchmark first
// checks that the library accepts the input: a benchmark of a failing
// verification would measure nothing useful.
func BenchmarkVerify(b *testing.B) {
	for _, s := range sizes {
		for _, l := range libs {
			b.Run("size="+s.name+"/lib="+l.name, func(b *testing.B) {
				in := newInput(s.n)
				check, err := l.prepare(in)
				if err != nil {
					b.Fatalf("%s: prepare: %v", l.name, err)
				}
				if err := check(in.body); err != nil {
					b.Fatalf("%s rejects the input: %v", l.name, err)
				}
				b.SetBytes(int64(len(in.body)))
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if err := check(in.body); err != nil {
						b.Fatalf("%s: %v", l.name, err)
					}
				}
			})
		}
	}
}

// TestLibsAcceptAndReject makes sure every library under benchmark really
// verifies: it accepts the signed input and rejects the same input with one
// bit of the body flipped. The baseline verifies nothing and is skipped.
func TestLibsAcceptAndReject(t *testing.T) {
	for _, s := range sizes {
		for _, l := range libs {
			t.Run("size="+s.name+"/lib="+l.name, func(t *testing.T) {
				in := newInput(s.n)
				check, err := l.prepare(in)
				if err != nil {
					t.Fatalf("prepare: %v", err)
				}
				if err := check(in.body); err != nil {
					t.Fatalf("rejects the signed input: %v", err)
				}
				if l.role == roleBaseline {
					return
				}
				tampered := append([]byte(nil), in.body...)
				tampered[len(tampered)/2] ^= 0x01
				if err := check(tampered); err == nil {
					t.Fatal("accepts a tampered body")
				}
			})
		}
	}
}

// interleaveSlice is roughly how long each library runs before the next one
// takes over in BenchmarkInterleaved.
const interleaveSlice = 200 * time.Microsecond

// BenchmarkInterleaved runs every library on the same input in turns of
// about 200 µs each, round after round, and reports each library's time
// per verification as "<lib>-ns/op". On a machine shared with other jobs
// the load changes from one second to the next; taking turns this often
// lets every library see the same load, so the ratios between them (which
// the targets are about) stay meaningful where separate benchmarks, run
// seconds apart, are not comparable. One benchmark operation is one turn of
// every library; the default ns/op is therefore not meaningful by itself.
//
// A library's time is the median over its turns, so that a turn in which
// the OS ran another job instead (a few milliseconds at a time on a shared
// machine) is left out rather than averaged in.
//
// The garbage collector is off while the libraries take turns and runs,
// untimed, after every round: otherwise a collection caused by one
// library's garbage would be charged to whichever library runs next. The
// allocating peers therefore do not pay for their garbage here (they do in
// BenchmarkVerify), which can only flatter them against this module's
// Verify, which allocates nothing.
func BenchmarkInterleaved(b *testing.B) {
	for _, s := range sizes {
		b.Run("size="+s.name, func(b *testing.B) {
			in := newInput(s.n)
			checks := make([]func([]byte) error, len(libs))
			batch := make([]int, len(libs))
			for i, l := range libs {
				check, err := l.prepare(in)
				if err != nil {
					b.Fatalf("%s: prepare: %v", l.name, err)
				}
				if err := check(in.body); err != nil {
					b.Fatalf("%s rejects the input: %v", l.name, err)
				}
				checks[i] = check
				batch[i] = turnSize(b, l.name, check, in.body)
			}
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			runtime.GC()
			// perOp[i] holds library i's time per verification in each of
			// its turns.
			perOp := make([][]float64, len(libs))
			turn := 0
			b.ResetTimer()
			for b.Loop() {
				// Rotate who goes first, so no library always follows
				// the same one.
				for j := range libs {
					i := (turn + j) % len(libs)
					check := checks[i]
					// One untimed call first: the library before may have
					// pushed the body and this library's state out of the
					// caches, which separate benchmarks never see.
					if err := check(in.body); err != nil {
						b.Fatalf("%s: %v", libs[i].name, err)
					}
					start := time.Now()
					for range batch[i] {
						if err := check(in.body); err != nil {
							b.Fatalf("%s: %v", libs[i].name, err)
						}
					}
					perOp[i] = append(perOp[i], float64(time.Since(start).Nanoseconds())/float64(batch[i]))
				}
				turn++
				b.StopTimer()
				runtime.GC()
				b.StartTimer()
			}
			for i, l := range libs {
				slices.Sort(perOp[i])
				b.ReportMetric(perOp[i][len(perOp[i])/2], l.name+"-ns/op")
			}
		})
	}
}

// turnSize returns how many calls of check take about interleaveSlice.
func turnSize(b *testing.B, name string, check func([]byte) error, body []byte) int {
	calls := 0
	start := time.Now()
	for calls == 0 || time.Since(start) < interleaveSlice/4 {
		if err := check(body); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		calls++
	}
	per := time.Since(start) / time.Duration(calls)
	return max(1, int(interleaveSlice/max(per, time.Nanosecond)))
}
