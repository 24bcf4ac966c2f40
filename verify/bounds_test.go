package verify_test

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stairhook/stairhook/verify"
)

// allocatedBytes returns the heap bytes one call of f allocates, averaged
// over runs calls.
func allocatedBytes(runs int, f func()) uint64 {
	f() // warm pools and lazily built state
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// TestVerifyWorkIsBoundedByTheBody checks that what Verify allocates does
// not grow with hostile header input: a 1 MiB signature value, a 1 MiB id,
// a million header values or a huge timestamp cost what a small one costs
// (the header is rejected by its length or shape before anything is copied).
// Only the body, capped by the Middleware, may cost in proportion.
func TestVerifyWorkIsBoundedByTheBody(t *testing.T) {
	secret, err := verify.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1764115200, 0)
	v, err := verify.NewVerifier(verify.Options{Keys: []verify.Key{{Secret: secret}}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":"evt_1"}`)
	signer, err := verify.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	valid, err := signer.Sign("evt_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	withHeader := func(name, value string) http.Header {
		h := valid.Clone()
		h.Set(name, value)
		return h
	}
	withValues := func(n int) http.Header {
		h := valid.Clone()
		for range n {
			h.Add("X-Staircase-Signature", "v1,AAAA")
		}
		return h
	}
	const huge = 1 << 20
	cases := []struct {
		name       string
		small, big http.Header
		wantErr    bool
	}{
		{"signature value", withHeader("X-Staircase-Signature", "v1,"+strings.Repeat("A", 40)), withHeader("X-Staircase-Signature", "v1,"+strings.Repeat("A", huge)), true},
		{"signature entries", withHeader("X-Staircase-Signature", strings.Repeat("v2,AAAA ", 10)), withHeader("X-Staircase-Signature", strings.Repeat("v2,AAAA ", huge/8)), true},
		{"header values", withValues(20), withValues(1 << 16), true},
		{"id", withHeader("X-Staircase-Id", strings.Repeat("i", 300)), withHeader("X-Staircase-Id", strings.Repeat("i", huge)), true},
		{"timestamp", withHeader("X-Staircase-Timestamp", strings.Repeat("1", 13)), withHeader("X-Staircase-Timestamp", strings.Repeat("1", huge)), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := func(h http.Header) func() {
				return func() {
					_, err := v.Verify(h, body)
					if (err != nil) != tc.wantErr {
						t.Fatalf("Verify error = %v, want error %v", err, tc.wantErr)
					}
				}
			}
			small := allocatedBytes(20, run(tc.small))
			big := allocatedBytes(20, run(tc.big))
			// A constant allowance covers hint strings; anything that
			// copied or split the input would cost about a mebibyte.
			if big > small+4096 {
				t.Errorf("a huge %s costs %d bytes per call against %d for a small one", tc.name, big, small)
			}
		})
	}
}
