package verify_test

import (
	"crypto/hmac"
	"crypto/sha256"
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
