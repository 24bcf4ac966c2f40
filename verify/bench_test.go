package verify_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stairhook/stairhook/verify"
)

var benchSizes = []struct {
	name string
	n    int
}{
	{"1KiB", 1 << 10},
	{"64KiB", 64 << 10},
	{"1MiB", 1 << 20},
}

// benchRequest returns a signed request of n bytes and a verifier for it.
func benchRequest(b *testing.B, n int) (*verify.Verifier, map[string][]string, []byte, []byte) {
	b.Helper()
	secret, err := verify.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAAAAAAAAAAA=")
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, n)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	now := time.Unix(1764115200, 0)
	signer, err := verify.NewSigner(secret)
	if err != nil {
		b.Fatal(err)
	}
	h, err := signer.Sign("evt_01JDQ3Z8K4M2N6P8R0T2V4X6Z8", now, body)
	if err != nil {
		b.Fatal(err)
	}
	v, err := verify.NewVerifier(verify.Options{
		Keys: []verify.Key{{Label: "primary", Secret: secret}},
		Now:  func() time.Time { return now },
	})
	if err != nil {
		b.Fatal(err)
	}
	signed := []byte("evt_01JDQ3Z8K4M2N6P8R0T2V4X6Z8." + strconv.FormatInt(now.Unix(), 10) + ".")
	signed = append(signed, body...)
	return v, h, body, signed
}

// BenchmarkVerify measures the valid path: parse the headers, check the
// timestamp, decode the entry, compute and compare one HMAC-SHA256.
func BenchmarkVerify(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			v, h, body, _ := benchRequest(b, size.n)
			if _, err := v.Verify(h, body); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(h, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBaselineSHA256 is the floor BenchmarkVerify is held against: one
// SHA-256 over the same signed bytes id + "." + ts + "." + body, prebuilt.
func BenchmarkBaselineSHA256(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			_, _, body, signed := benchRequest(b, size.n)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			var sink [sha256.Size]byte
			for b.Loop() {
				sink = sha256.Sum256(signed)
			}
			_ = sink
		})
	}
}

// BenchmarkBaselineHMAC is the floor for any HMAC-SHA256 verifier: one
// crypto/hmac over the same signed bytes, reusing the keyed state as Verify
// does. The gap between it and BenchmarkBaselineSHA256 is the cost of HMAC
// itself (the outer block, restoring the keyed states, more calls into the
// block function); the gap between Verify and it is header parsing.
func BenchmarkBaselineHMAC(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			_, _, body, signed := benchRequest(b, size.n)
			key := []byte("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
			m := hmac.New(sha256.New, key)
			var sum [sha256.Size]byte
			m.Reset() // save the keyed states once, as Verify's pooled states have
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				m.Reset()
				m.Write(signed)
				m.Sum(sum[:0])
			}
		})
	}
}

// BenchmarkVerifyRatio reports Verify's cost relative to the two baselines
// on a shared, noisy machine, where separate benchmarks run minutes apart
// under different loads. Each iteration is a round in which Verify, the
// SHA-256 baseline and the HMAC baseline take turns on the same input, a
// batch each; the metrics are the medians over rounds of the per-round
// ratios (x-sha256: Verify / BaselineSHA256, x-hmac: Verify / BaselineHMAC).
// ns/op is the time of one round and means little on its own.
func BenchmarkVerifyRatio(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			v, h, body, signed := benchRequest(b, size.n)
			m := hmac.New(sha256.New, []byte("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
			m.Reset()
			var sum [sha256.Size]byte
			batch := max(1, (256<<10)/(size.n+1024))
			timeBatch := func(f func()) time.Duration {
				start := time.Now()
				for range batch {
					f()
				}
				return time.Since(start)
			}
			verifyOnce := func() {
				if _, err := v.Verify(h, body); err != nil {
					b.Fatal(err)
				}
			}
			shaOnce := func() { sum = sha256.Sum256(signed) }
			hmacOnce := func() {
				m.Reset()
				m.Write(signed)
				m.Sum(sum[:0])
			}
			var toSHA, toHMAC []float64
			for b.Loop() {
				tv := timeBatch(verifyOnce)
				ts := timeBatch(shaOnce)
				th := timeBatch(hmacOnce)
				toSHA = append(toSHA, float64(tv)/float64(ts))
				toHMAC = append(toHMAC, float64(tv)/float64(th))
			}
			slices.Sort(toSHA)
			slices.Sort(toHMAC)
			b.ReportMetric(toSHA[len(toSHA)/2], "x-sha256")
			b.ReportMetric(toHMAC[len(toHMAC)/2], "x-hmac")
		})
	}
}
