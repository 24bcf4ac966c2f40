package verify_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stairhook/stairhook/testvectors"
	"github.com/stairhook/stairhook/verify"
)

const vectorsFile = "testvectors/vectors.json"

// sentinels maps the Go names used in vectors.json to the errors.
var sentinels = map[string]error{
	"ErrMissingSignature":    verify.ErrMissingSignature,
	"ErrMalformedHeader":     verify.ErrMalformedHeader,
	"ErrTimestampTooOld":     verify.ErrTimestampTooOld,
	"ErrTimestampTooNew":     verify.ErrTimestampTooNew,
	"ErrNoMatchingSignature": verify.ErrNoMatchingSignature,
	"ErrInvalidSecret":       verify.ErrInvalidSecret,
	"ErrInvalidOptions":      verify.ErrInvalidOptions,
}

func loadVectors(t testing.TB) []testvectors.Vector {
	t.Helper()
	f, err := testvectors.Load()
	if err != nil {
		t.Fatalf("%s: %v", vectorsFile, err)
	}
	return f.Tests
}

// vectorVerifier builds the verifier a vector describes.
func vectorVerifier(v *testvectors.Vector) (*verify.Verifier, error) {
	keys := make([]verify.Key, 0, len(v.Keys))
	for _, k := range v.Keys {
		var (
			s   verify.Secret
			err error
		)
		if k.RawBase64 != "" {
			var b []byte
			if b, err = k.RawKey(); err == nil {
				s, err = verify.RawSecret(b)
			}
		} else {
			s, err = verify.ParseSecret(k.Secret)
		}
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.Label, err)
		}
		key := verify.Key{Label: k.Label, Secret: s}
		if k.Expires != 0 {
			key.Expires = time.Unix(k.Expires, 0)
		}
		keys = append(keys, key)
	}
	// NewVerifier refuses a keyring that has expired already; a vector
	// whose keys have all expired at its time describes a verifier made
	// before the last of them did, so its clock starts a second before.
	now := time.Unix(v.Now, 0)
	clock := now
	if allExpired(keys, now) {
		var last time.Time
		for _, k := range keys {
			if k.Expires.After(last) {
				last = k.Expires
			}
		}
		clock = last.Add(-time.Second)
	}
	ver, err := verify.NewVerifier(verify.Options{
		Keys:               keys,
		Tolerance:          time.Duration(v.Options.ToleranceSeconds) * time.Second,
		Now:                func() time.Time { return clock },
		AllowBodySignature: v.Options.AllowBodySignature,
		AllowSecretDigest:  v.Options.AllowSecretDigest,
	})
	clock = now
	return ver, err
}

// allExpired reports whether no key of keys is active at now.
func allExpired(keys []verify.Key, now time.Time) bool {
	for _, k := range keys {
		if k.Expires.IsZero() || now.Before(k.Expires) {
			return false
		}
	}
	return true
}

// canonicalHeader builds the header as net/http would, canonicalizing names.
func canonicalHeader(v *testvectors.Vector) http.Header {
	h := http.Header{}
	for name, value := range v.Headers {
		h.Add(name, value)
	}
	return h
}

// rawHeader keeps the names exactly as the vector spells them, as a map
// literal built by hand would, to exercise the case-insensitive fallback.
func rawHeader(v *testvectors.Vector) http.Header {
	h := http.Header{}
	for name, value := range v.Headers {
		h[name] = []string{value}
	}
	return h
}

// checkOutcome compares one Verify outcome with the vector's expectation.
func checkOutcome(v *testvectors.Vector, res verify.Result, err error) error {
	switch v.Result {
	case testvectors.ResultValid:
		if err != nil {
			return fmt.Errorf("want valid, got error %v", err)
		}
		if res.KeyLabel != v.KeyLabel {
			return fmt.Errorf("valid, but key label %q, want %q", res.KeyLabel, v.KeyLabel)
		}
		return nil
	case testvectors.ResultInvalid:
		want, ok := sentinels[v.Error]
		if !ok {
			return fmt.Errorf("unknown error name %q", v.Error)
		}
		if err == nil {
			return fmt.Errorf("want %s, got valid (key %q)", v.Error, res.KeyLabel)
		}
		if !errors.Is(err, want) {
			return fmt.Errorf("want %s, got %v", v.Error, err)
		}
		for name, other := range sentinels {
			if name != v.Error && errors.Is(err, other) {
				return fmt.Errorf("error %v matches %s as well as %s", err, name, v.Error)
			}
		}
		if res != (verify.Result{}) {
			return fmt.Errorf("error %v with a non-zero result %+v", err, res)
		}
		return nil
	default:
		return fmt.Errorf("unknown result %q", v.Result)
	}
}

func TestVectors(t *testing.T) {
	vectors := loadVectors(t)
	for i := range vectors {
		v := &vectors[i]
		t.Run(fmt.Sprintf("tcId-%d", v.TcID), func(t *testing.T) {
			t.Parallel()
			fail := func(format string, args ...any) {
				t.Helper()
				t.Errorf("%s tcId %d (%s): %s", vectorsFile, v.TcID, v.Comment, fmt.Sprintf(format, args...))
			}
			body, err := v.Body()
			if err != nil {
				fail("%v", err)
				return
			}
			ver, err := vectorVerifier(v)
			if err != nil {
				fail("building the verifier: %v", err)
				return
			}
			res, err := ver.Verify(canonicalHeader(v), body)
			if err := checkOutcome(v, res, err); err != nil {
				fail("canonical header: %v", err)
			}
			// Every third vector again with the names as written, which
			// are mostly not in canonical form.
			if v.TcID%3 == 0 || hasFlag(v, "HeaderCase") || hasFlag(v, "StandardWebhooks") {
				res, err := ver.Verify(rawHeader(v), body)
				if err := checkOutcome(v, res, err); err != nil {
					fail("header names as written: %v", err)
				}
			}
		})
	}
}

func hasFlag(v *testvectors.Vector, flag string) bool {
	for _, f := range v.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

// TestVectorsCoverEverySentinel makes sure the vectors name every
// verification error, and keeps the runner's name table honest.
func TestVectorsCoverEverySentinel(t *testing.T) {
	seen := map[string]int{}
	valid := 0
	for _, v := range loadVectors(t) {
		if v.Result == testvectors.ResultValid {
			valid++
		}
		seen[v.Error]++
	}
	for _, name := range []string{"ErrMissingSignature", "ErrMalformedHeader", "ErrTimestampTooOld", "ErrTimestampTooNew", "ErrNoMatchingSignature"} {
		if seen[name] == 0 {
			t.Errorf("%s: no vector expects %s", vectorsFile, name)
		}
	}
	if valid == 0 {
		t.Errorf("%s: no valid vector", vectorsFile)
	}
}

// TestCheckOutcomeRejects proves the runner is not vacuous: unknown result
// and error names, wrong sentinels and wrong labels all fail.
func TestCheckOutcomeRejects(t *testing.T) {
	for _, c := range []struct {
		name string
		v    testvectors.Vector
		res  verify.Result
		err  error
	}{
		{"unknown result", testvectors.Vector{Result: "acceptable"}, verify.Result{}, nil},
		{"unknown error name", testvectors.Vector{Result: "invalid", Error: "ErrNope"}, verify.Result{}, verify.ErrMalformedHeader},
		{"wrong sentinel", testvectors.Vector{Result: "invalid", Error: "ErrMalformedHeader"}, verify.Result{}, verify.ErrNoMatchingSignature},
		{"two sentinels", testvectors.Vector{Result: "invalid", Error: "ErrMalformedHeader"}, verify.Result{}, errors.Join(verify.ErrMalformedHeader, verify.ErrTimestampTooOld)},
		{"invalid but accepted", testvectors.Vector{Result: "invalid", Error: "ErrMalformedHeader"}, verify.Result{KeyLabel: "a"}, nil},
		{"valid but rejected", testvectors.Vector{Result: "valid", KeyLabel: "a"}, verify.Result{}, verify.ErrMalformedHeader},
		{"wrong key label", testvectors.Vector{Result: "valid", KeyLabel: "a"}, verify.Result{KeyLabel: "b"}, nil},
	} {
		if err := checkOutcome(&c.v, c.res, c.err); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	ok := testvectors.Vector{Result: "valid", KeyLabel: "a"}
	if err := checkOutcome(&ok, verify.Result{KeyLabel: "a"}, nil); err != nil {
		t.Errorf("matching valid outcome rejected: %v", err)
	}
}
