package bench

import (
	"testing"
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
