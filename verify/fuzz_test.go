package verify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stairhook/stairhook/testvectors"
)

// fuzzKey is one key of the fuzz keyring with what the reference needs.
type fuzzKey struct {
	label  string
	key    []byte
	digest [sha256.Size]byte
	secret Secret
}

// fuzzKeyring collects every distinct secret of the vectors, so that the
// valid vectors stay valid as seeds.
func fuzzKeyring(tb testing.TB, vectors []testvectors.Vector) []fuzzKey {
	var ring []fuzzKey
	seen := map[string]bool{}
	for _, v := range vectors {
		for _, k := range v.Keys {
			var (
				s   Secret
				err error
			)
			if k.RawBase64 != "" {
				var b []byte
				if b, err = k.RawKey(); err == nil {
					s, err = RawSecret(b)
				}
			} else {
				s, err = ParseSecret(k.Secret)
			}
			if err != nil {
				tb.Fatalf("tcId %d: %v", v.TcID, err)
			}
			id := strconv.FormatBool(s.raw) + base64.StdEncoding.EncodeToString(s.key)
			if seen[id] {
				continue
			}
			seen[id] = true
			fk := fuzzKey{label: "k" + strconv.Itoa(len(ring)+1), key: s.key, secret: s}
			if s.raw {
				fk.digest = sha256.Sum256(s.key)
			} else {
				fk.digest = sha256.Sum256([]byte("whsec_" + base64.StdEncoding.EncodeToString(s.key)))
			}
			ring = append(ring, fk)
		}
	}
	return ring
}

// refDecode32 is the reference decoder for a 32-byte value in canonical
// padded standard base64. encoding/base64 skips CR and LF, which the scheme
// does not allow.
func refDecode32(s string) ([]byte, bool) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 32 {
		return nil, false
	}
	return b, true
}

func refValidID(id string) bool {
	if len(id) < 1 || len(id) > 256 {
		return false
	}
	for _, c := range []byte(id) {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

func refTimestamp(s string) (int64, bool) {
	if len(s) < 1 || len(s) > 12 || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func refFields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' })
}

// refVerify is an independent, deliberately plain reading of SPEC.md's
// verification order for a request with one value per header, a 300 s
// tolerance and keys that never expire. It returns the matching label and
// scheme, or the sentinel.
func refVerify(ring []fuzzKey, now int64, allowBody, allowDigest bool, id, ts, sig string, body []byte) (string, Scheme, error) {
	entries := refFields(sig)
	switch {
	case len(entries) == 0:
		return "", "", ErrMissingSignature
	case len(sig) > 4096, len(entries) > 16:
		return "", "", ErrMalformedHeader
	}
	var v1 []string
	versioned := false
	for _, e := range entries {
		if strings.HasPrefix(e, "v1,") {
			v1 = append(v1, e[3:])
		}
		if strings.IndexByte(e, ',') > 0 {
			versioned = true
		}
	}
	if len(v1) > 0 {
		t, ok := refTimestamp(ts)
		if !refValidID(id) || !ok {
			return "", "", ErrMalformedHeader
		}
		if t < now-300 {
			return "", "", ErrTimestampTooOld
		}
		if t > now+300 {
			return "", "", ErrTimestampTooNew
		}
		var got [][]byte
		for _, e := range v1 {
			b, ok := refDecode32(e)
			if !ok {
				return "", "", ErrMalformedHeader
			}
			got = append(got, b)
		}
		for _, k := range ring {
			m := hmac.New(sha256.New, k.key)
			m.Write([]byte(id + "." + ts + "."))
			m.Write(body)
			want := m.Sum(nil)
			for _, g := range got {
				if hmac.Equal(g, want) {
					return k.label, SchemeV1, nil
				}
			}
		}
		return "", "", ErrNoMatchingSignature
	}
	if versioned {
		return "", "", ErrNoMatchingSignature
	}
	if (!allowBody && !allowDigest) || len(entries) != 1 {
		return "", "", ErrMalformedHeader
	}
	value := entries[0]
	if len(value) >= 7 && strings.ToLower(value[:7]) == "sha256=" {
		value = value[7:]
	}
	var got []byte
	if len(value) == 64 {
		b, err := hex.DecodeString(value)
		if err != nil {
			return "", "", ErrMalformedHeader
		}
		got = b
	} else {
		b, ok := refDecode32(value)
		if !ok {
			return "", "", ErrMalformedHeader
		}
		got = b
	}
	for _, k := range ring {
		if allowBody {
			m := hmac.New(sha256.New, k.key)
			m.Write(body)
			if hmac.Equal(m.Sum(nil), got) {
				return k.label, SchemeBody, nil
			}
		}
		if allowDigest && hmac.Equal(k.digest[:], got) {
			return k.label, SchemeSecretDigest, nil
		}
	}
	return "", "", ErrNoMatchingSignature
}

// vectorHeader returns the value of a header of v by name, in any case.
func vectorHeader(v *testvectors.Vector, name string) (string, bool) {
	for k, val := range v.Headers {
		if strings.EqualFold(k, name) {
			return val, true
		}
	}
	return "", false
}

// FuzzVerify checks Verify against refVerify on arbitrary headers and
// bodies: the same sentinel on failure, the same key and scheme on success,
// never a panic. The seed corpus is every vector (bodies up to 64 KiB).
func FuzzVerify(f *testing.F) {
	tv, err := testvectors.Load()
	if err != nil {
		f.Fatal(err)
	}
	ring := fuzzKeyring(f, tv.Tests)
	for i := range tv.Tests {
		v := &tv.Tests[i]
		body, err := v.Body()
		if err != nil {
			f.Fatal(err)
		}
		if len(body) > 64<<10 {
			continue
		}
		standard := false
		sig, ok := vectorHeader(v, "x-staircase-signature")
		if !ok {
			sig, standard = vectorHeader(v, "webhook-signature")
		}
		prefix := "x-staircase-"
		if standard {
			prefix = "webhook-"
		}
		id, _ := vectorHeader(v, prefix+"id")
		ts, _ := vectorHeader(v, prefix+"timestamp")
		f.Add(standard, v.Now, v.Options.AllowBodySignature, v.Options.AllowSecretDigest, id, ts, sig, body)
	}
	keys := make([]Key, len(ring))
	for i, k := range ring {
		keys[i] = Key{Label: k.label, Secret: k.secret}
	}
	verifiers := map[[2]bool]*Verifier{}
	var clock int64
	for _, body := range []bool{false, true} {
		for _, digest := range []bool{false, true} {
			v, err := NewVerifier(Options{Keys: keys, AllowBodySignature: body, AllowSecretDigest: digest, Now: func() time.Time { return time.Unix(clock, 0) }})
			if err != nil {
				f.Fatal(err)
			}
			verifiers[[2]bool{body, digest}] = v
		}
	}
	f.Fuzz(func(t *testing.T, standard bool, now int64, allowBody, allowDigest bool, id, ts, sig string, body []byte) {
		if now < 0 || now > 1<<40 {
			now &= 1<<40 - 1
		}
		fam := staircaseHeaders
		if standard {
			fam = standardHeaders
		}
		h := http.Header{fam.id: {id}, fam.timestamp: {ts}, fam.signature: {sig}}
		v := verifiers[[2]bool{allowBody, allowDigest}]
		clock = now // the fuzz function of one worker runs sequentially
		res, err := v.Verify(h, body)
		label, scheme, want := refVerify(ring, now, allowBody, allowDigest, id, ts, sig, body)
		if want != nil {
			if err == nil {
				t.Fatalf("Verify accepted (key %s, scheme %s); the reference says %v", res.KeyLabel, res.Scheme, want)
			}
			if !errors.Is(err, want) {
				t.Fatalf("Verify = %v; the reference says %v", err, want)
			}
			return
		}
		if err != nil {
			t.Fatalf("Verify = %v; the reference accepts with key %s, scheme %s", err, label, scheme)
		}
		if res.KeyLabel != label || res.Scheme != scheme {
			t.Fatalf("Verify matched key %s scheme %s; the reference key %s scheme %s", res.KeyLabel, res.Scheme, label, scheme)
		}
		if scheme == SchemeV1 && (res.ID != id || res.Timestamp.Unix() != mustAtoi(ts)) {
			t.Fatalf("Result %+v does not carry id %q and timestamp %q", res, id, ts)
		}
	})
}

func mustAtoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// FuzzParseSignatureHeader fuzzes the header parsing helpers against plain
// references built on strings, strconv, encoding/hex and encoding/base64.
func FuzzParseSignatureHeader(f *testing.F) {
	tv, err := testvectors.Load()
	if err != nil {
		f.Fatal(err)
	}
	for _, v := range tv.Tests {
		for _, val := range v.Headers {
			f.Add(val)
		}
	}
	f.Add("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v2,x\tv1a,y")
	f.Add("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE\n")
	f.Add("sha256=" + strings.Repeat("aF", 32))
	f.Fuzz(func(t *testing.T, s string) {
		// nextEntry: an entry without separators, and a rest that is a
		// suffix of s after only separators and the entry.
		rest := s
		var entries []string
		for {
			before := rest
			var e string
			e, rest = nextEntry(rest)
			if strings.ContainsAny(e, " \t") {
				t.Fatalf("entry %q contains a separator", e)
			}
			if !strings.HasSuffix(before, e+rest) || strings.Trim(before[:len(before)-len(e+rest)], " \t") != "" {
				t.Fatalf("nextEntry(%q) = %q, %q", before, e, rest)
			}
			if e == "" {
				if strings.Trim(rest, " \t") != "" {
					t.Fatalf("nextEntry stopped before %q", rest)
				}
				break
			}
			entries = append(entries, e)
		}
		want := refFields(s)
		if len(entries) != len(want) {
			t.Fatalf("%d entries, the reference finds %d", len(entries), len(want))
		}

		var sum sigSummary
		summarize(&sum, [][]string{{s}})
		v1 := 0
		for _, e := range want {
			if strings.HasPrefix(e, "v1,") {
				if v1 == 0 && sum.firstV1 != e {
					t.Fatalf("first v1 entry = %q, want %q", sum.firstV1, e)
				}
				v1++
			}
		}
		if sum.length != len(s) || sum.entries != len(want) || sum.v1 != v1 {
			t.Fatalf("summary %d bytes, %d entries, %d v1; want %d, %d, %d", sum.length, sum.entries, sum.v1, len(s), len(want), v1)
		}
		if (sum.entries == 1) != (sum.only != "") || (sum.entries == 1 && sum.only != want[0]) {
			t.Fatalf("only = %q with %d entries", sum.only, sum.entries)
		}

		for _, e := range append(want, s) {
			var got [32]byte
			ref, refOK := refDecode32(e)
			ok := decodeBase64MAC(&got, e)
			if ok != refOK || (ok && !bytes.Equal(got[:], ref)) {
				t.Fatalf("decodeBase64MAC(%q) = %x, %v; reference %x, %v", e, got, ok, ref, refOK)
			}
			if len(e) == 64 {
				ref, err := hex.DecodeString(e)
				refOK = err == nil
				ok = decodeMAC(&got, e)
				if ok != refOK || (ok && !bytes.Equal(got[:], ref)) {
					t.Fatalf("decodeMAC(%q) = %x, %v; reference %x, %v", e, got, ok, ref, refOK)
				}
			} else if decodeMAC(&got, e) != refOK {
				t.Fatalf("decodeMAC(%q) disagrees with the base64 reference", e)
			}
			trimmed := trimSHA256Prefix(e)
			if len(e) >= 7 && strings.ToLower(e[:7]) == "sha256=" {
				if trimmed != e[7:] {
					t.Fatalf("trimSHA256Prefix(%q) = %q", e, trimmed)
				}
			} else if trimmed != e {
				t.Fatalf("trimSHA256Prefix(%q) = %q", e, trimmed)
			}
		}

		n, ok := parseTimestamp(s)
		rn, rok := refTimestamp(s)
		if ok != rok || n != rn {
			t.Fatalf("parseTimestamp(%q) = %d, %v; reference %d, %v", s, n, ok, rn, rok)
		}
		if validID(s) != refValidID(s) {
			t.Fatalf("validID(%q) = %v", s, validID(s))
		}
		if _, err := ParseSecret(s); err != nil && !errors.Is(err, ErrInvalidSecret) {
			t.Fatalf("ParseSecret(%q) = %v, not ErrInvalidSecret", s, err)
		}
	})
}
