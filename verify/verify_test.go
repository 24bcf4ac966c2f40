package verify_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/verify"
)

var fixedNow = time.Unix(1764115200, 0)

const testID = "evt_01JDQ3Z8K4M2N6P8R0T2V4X6Z8"

var testBody = []byte(`{"type":"signal.created","account":{"name":"Acme"},"signal":{"title":"Churn risk"}}`)

// allSentinels are the verification outcomes; an error must match exactly
// one of them.
var allSentinels = []error{
	verify.ErrMissingSignature, verify.ErrMalformedHeader, verify.ErrTimestampTooOld,
	verify.ErrTimestampTooNew, verify.ErrNoMatchingSignature, verify.ErrInvalidSecret, verify.ErrInvalidOptions,
	verify.ErrInvalidID, verify.ErrInvalidTimestamp,
}

func mustSecret(t testing.TB, text string) verify.Secret {
	t.Helper()
	s, err := verify.ParseSecret(text)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTestVerifier(t testing.TB, opts verify.Options) *verify.Verifier {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return fixedNow }
	}
	v, err := verify.NewVerifier(opts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustSign(t testing.TB, id string, ts time.Time, body []byte, secrets ...verify.Secret) http.Header {
	t.Helper()
	s, err := verify.NewSigner(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.Sign(id, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// refMAC is the v1 MAC computed independently of the package.
func refMAC(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return m.Sum(nil)
}

// requireSentinel fails unless err matches want and no other sentinel.
func requireSentinel(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
	for _, other := range allSentinels {
		if other != want && errors.Is(err, other) {
			t.Fatalf("error %v also matches %v", err, other)
		}
	}
}

func TestNewVerifierRejects(t *testing.T) {
	good := mustSecret(t, s32)
	for _, c := range []struct {
		name string
		opts verify.Options
		want error
	}{
		{"no keys", verify.Options{}, verify.ErrInvalidOptions},
		{"empty keyring", verify.Options{Keys: []verify.Key{}}, verify.ErrInvalidOptions},
		{"negative tolerance", verify.Options{Keys: []verify.Key{{Secret: good}}, Tolerance: -time.Second}, verify.ErrInvalidOptions},
		{"duplicate labels", verify.Options{Keys: []verify.Key{{Label: "a", Secret: good}, {Label: "a", Secret: good}}}, verify.ErrInvalidOptions},
		{"explicit label equal to a default one", verify.Options{Keys: []verify.Key{{Secret: good}, {Label: "key1", Secret: good}}}, verify.ErrInvalidOptions},
		{"zero Secret", verify.Options{Keys: []verify.Key{{Label: "a"}}}, verify.ErrInvalidSecret},
		{"zero Secret after a good one", verify.Options{Keys: []verify.Key{{Label: "a", Secret: good}, {Label: "b"}}}, verify.ErrInvalidSecret},
		{"the only key expired", verify.Options{Keys: []verify.Key{{Secret: good, Expires: fixedNow.Add(-time.Hour)}}, Now: func() time.Time { return fixedNow }}, verify.ErrInvalidOptions},
		{"the only key expiring now", verify.Options{Keys: []verify.Key{{Secret: good, Expires: fixedNow}}, Now: func() time.Time { return fixedNow }}, verify.ErrInvalidOptions},
		{"every key expired", verify.Options{Keys: []verify.Key{
			{Label: "a", Secret: good, Expires: fixedNow.Add(-time.Hour)},
			{Label: "b", Secret: good, Expires: fixedNow.Add(-time.Second)},
		}, Now: func() time.Time { return fixedNow }}, verify.ErrInvalidOptions},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := verify.NewVerifier(c.opts)
			if v != nil {
				t.Fatal("NewVerifier returned a verifier with an error")
			}
			requireSentinel(t, err, c.want)
		})
	}
}

// A keyring whose keys have all expired would refuse every request: it is
// refused itself, with the time of the last expiry; one active key is
// enough.
func TestNewVerifierExpiredKeyring(t *testing.T) {
	good := mustSecret(t, s32)
	now := func() time.Time { return fixedNow }
	_, err := verify.NewVerifier(verify.Options{Keys: []verify.Key{
		{Label: "old", Secret: good, Expires: fixedNow.Add(-48 * time.Hour)},
		{Label: "new", Secret: good, Expires: fixedNow.Add(-time.Hour)},
	}, Now: now})
	requireSentinel(t, err, verify.ErrInvalidOptions)
	if !strings.Contains(err.Error(), "every key has expired") || !strings.Contains(err.Error(), fixedNow.Add(-time.Hour).UTC().Format(time.RFC3339)) {
		t.Fatalf("error %q does not say that every key expired, and when the last did", err)
	}
	for name, keys := range map[string][]verify.Key{
		"one key without expiry": {{Label: "old", Secret: good, Expires: fixedNow.Add(-time.Hour)}, {Label: "new", Secret: good}},
		"one key expiring later": {{Label: "old", Secret: good, Expires: fixedNow.Add(-time.Hour)}, {Label: "new", Secret: good, Expires: fixedNow.Add(time.Second)}},
	} {
		if _, err := verify.NewVerifier(verify.Options{Keys: keys, Now: now}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestNewVerifierDefaults(t *testing.T) {
	a, b := mustSecret(t, s32), mustSecret(t, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	keys := []verify.Key{{Secret: a}, {Secret: b}}
	v, err := verify.NewVerifier(verify.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if v.Tolerance() != verify.DefaultTolerance || verify.DefaultTolerance != 5*time.Minute {
		t.Fatalf("Tolerance() = %v, want 5m", v.Tolerance())
	}
	// Now defaults to the wall clock: a request signed now verifies.
	res, err := v.Verify(mustSign(t, testID, time.Now(), testBody, b), testBody)
	if err != nil {
		t.Fatal(err)
	}
	if res.KeyLabel != "key2" {
		t.Fatalf("KeyLabel = %q, want the positional default key2", res.KeyLabel)
	}
	// The verifier copied the keyring.
	keys[1].Secret = a
	if _, err := v.Verify(mustSign(t, testID, time.Now(), testBody, b), testBody); err != nil {
		t.Fatalf("changing Options.Keys after NewVerifier changed the verifier: %v", err)
	}
}

func TestVerifyResult(t *testing.T) {
	s := mustSecret(t, s32)
	v := newTestVerifier(t, verify.Options{Keys: []verify.Key{{Label: "current", Secret: s}}})
	ts := fixedNow.Add(-42 * time.Second)
	res, err := v.Verify(mustSign(t, testID, ts, testBody, s), testBody)
	if err != nil {
		t.Fatal(err)
	}
	want := verify.Result{ID: testID, Timestamp: ts, KeyLabel: "current", Scheme: verify.SchemeV1}
	if res.ID != want.ID || !res.Timestamp.Equal(want.Timestamp) || res.KeyLabel != want.KeyLabel || res.Scheme != want.Scheme {
		t.Fatalf("Result = %+v, want %+v", res, want)
	}
}

func TestSigner(t *testing.T) {
	oldS, newS := mustSecret(t, s32), mustSecret(t, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	h := mustSign(t, testID, fixedNow, testBody, oldS, newS)
	if len(h) != 3 {
		t.Fatalf("Sign returned %d headers, want 3: %v", len(h), h)
	}
	for _, name := range []string{"X-Staircase-Id", "X-Staircase-Timestamp", "X-Staircase-Signature"} {
		if len(h[name]) != 1 {
			t.Fatalf("header %s = %q, want one value", name, h[name])
		}
	}
	if h.Get("X-Staircase-Id") != testID || h.Get("X-Staircase-Timestamp") != "1764115200" {
		t.Fatalf("id/timestamp headers = %v", h)
	}
	entries := strings.Split(h.Get("X-Staircase-Signature"), " ")
	if len(entries) != 2 {
		t.Fatalf("rotation signer made %d entries, want 2", len(entries))
	}
	for i, key := range [][]byte{b32, mustStd("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")} {
		want := "v1," + base64.StdEncoding.EncodeToString(refMAC(key, testID, "1764115200", testBody))
		if !hmac.Equal([]byte(entries[i]), []byte(want)) {
			t.Fatalf("entry %d differs from an independent HMAC", i)
		}
	}
	// A receiver holding either secret alone accepts the request.
	for label, s := range map[string]verify.Secret{"old": oldS, "new": newS} {
		v := newTestVerifier(t, verify.Options{Keys: []verify.Key{{Label: label, Secret: s}}})
		res, err := v.Verify(h, testBody)
		if err != nil || res.KeyLabel != label {
			t.Fatalf("verifier with only the %s key: %+v, %v", label, res, err)
		}
	}
}

func TestSignerRejects(t *testing.T) {
	good := mustSecret(t, s32)
	many := make([]verify.Secret, 17)
	for i := range many {
		many[i] = good
	}
	for name, secrets := range map[string][]verify.Secret{
		"no secret":  nil,
		"zero":       {{}},
		"17 secrets": many,
	} {
		if s, err := verify.NewSigner(secrets...); s != nil || !errors.Is(err, verify.ErrInvalidSecret) {
			t.Errorf("NewSigner(%s) = %v, %v; want ErrInvalidSecret", name, s, err)
		}
	}
	s, err := verify.NewSigner(good)
	if err != nil {
		t.Fatal(err)
	}
	// Signing errors are signing sentinels, not the verification error
	// ErrMalformedHeader a receiver reports.
	for _, c := range []struct {
		name string
		id   string
		ts   time.Time
		want error
	}{
		{"empty id", "", fixedNow, verify.ErrInvalidID},
		{"id with a space", "evt 1", fixedNow, verify.ErrInvalidID},
		{"id with a control character", "evt\n1", fixedNow, verify.ErrInvalidID},
		{"id of 257 characters", strings.Repeat("a", 257), fixedNow, verify.ErrInvalidID},
		{"non-ASCII id", "évt", fixedNow, verify.ErrInvalidID},
		{"timestamp before 1970", testID, time.Unix(-1, 0), verify.ErrInvalidTimestamp},
		{"timestamp of 13 digits", testID, time.Unix(1_000_000_000_000, 0), verify.ErrInvalidTimestamp},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := s.Sign(c.id, c.ts, testBody)
			if h != nil {
				t.Fatal("Sign returned headers with an error")
			}
			requireSentinel(t, err, c.want)
		})
	}
	if _, err := s.Sign(strings.Repeat("~", 256), time.Unix(999_999_999_999, 0), nil); err != nil {
		t.Fatalf("Sign at the limits: %v", err)
	}
	if _, err := s.Sign("x", time.Unix(0, 0), nil); err != nil {
		t.Fatalf("Sign at the epoch: %v", err)
	}
}

// TestVerifyHeaderShapes covers what a flat map of vectors cannot say:
// repeated headers, several values, nil maps.
func TestVerifyHeaderShapes(t *testing.T) {
	s := mustSecret(t, s32)
	v := newTestVerifier(t, verify.Options{Keys: []verify.Key{{Label: "k", Secret: s}}})
	signed := mustSign(t, testID, fixedNow, testBody, s)
	sig := signed.Get("X-Staircase-Signature")
	wrongSig := "v1," + base64.StdEncoding.EncodeToString(refMAC([]byte("another key of thirty-two bytes!"), testID, "1764115200", testBody))
	with := func(mod func(h http.Header)) http.Header {
		h := signed.Clone()
		mod(h)
		return h
	}
	for _, c := range []struct {
		name string
		h    http.Header
		want error
	}{
		{"nil header", nil, verify.ErrMissingSignature},
		{"signature entries spread over two header lines", with(func(h http.Header) {
			h.Set("X-Staircase-Signature", wrongSig)
			h.Add("X-Staircase-Signature", sig)
		}), nil},
		{"an empty signature line beside a good one", with(func(h http.Header) { h.Add("X-Staircase-Signature", "") }), nil},
		{"id header repeated", with(func(h http.Header) { h.Add("X-Staircase-Id", testID) }), verify.ErrMalformedHeader},
		{"timestamp header repeated", with(func(h http.Header) { h.Add("X-Staircase-Timestamp", "1764115200") }), verify.ErrMalformedHeader},
		{"id header present with no value", with(func(h http.Header) { h["X-Staircase-Id"] = nil }), verify.ErrMalformedHeader},
		{"signature header present with no value", with(func(h http.Header) { h["X-Staircase-Signature"] = nil }), verify.ErrMissingSignature},
		{"17 entries over two lines", with(func(h http.Header) {
			h.Set("X-Staircase-Signature", strings.Repeat(wrongSig+" ", 8)+sig)
			h.Add("X-Staircase-Signature", strings.Repeat(wrongSig+" ", 8))
		}), verify.ErrMalformedHeader},
		{"4097 bytes over two lines", with(func(h http.Header) {
			h.Add("X-Staircase-Signature", "v2,"+strings.Repeat("A", 4096-len(sig)-1-3+1))
		}), verify.ErrMalformedHeader},
		{"4096 bytes over two lines", with(func(h http.Header) {
			h.Add("X-Staircase-Signature", "v2,"+strings.Repeat("A", 4096-len(sig)-1-3))
		}), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := v.Verify(c.h, testBody)
			if c.want == nil {
				if err != nil || res.KeyLabel != "k" {
					t.Fatalf("Verify = %+v, %v; want valid", res, err)
				}
				return
			}
			requireSentinel(t, err, c.want)
		})
	}
}

// TestVerifyHeaderSpellings covers a hand-built header map that holds one
// name under several spellings. Every spelling counts, as a repeated header,
// so the outcome cannot depend on the order in which the map is ranged:
// each case runs many times.
func TestVerifyHeaderSpellings(t *testing.T) {
	s := mustSecret(t, s32)
	v := newTestVerifier(t, verify.Options{Keys: []verify.Key{{Label: "k", Secret: s}}})
	signed := mustSign(t, testID, fixedNow, testBody, s)
	sig := signed.Get("X-Staircase-Signature")
	wrongSig := "v1," + base64.StdEncoding.EncodeToString(refMAC([]byte("another key of thirty-two bytes!"), testID, "1764115200", testBody))
	const ts = "1764115200"
	for _, c := range []struct {
		name string
		h    http.Header
		want error
	}{
		{"id under two spellings, canonical absent", http.Header{
			"x-staircase-id": {testID}, "X-STAIRCASE-ID": {"evt_other"},
			"X-Staircase-Timestamp": {ts}, "X-Staircase-Signature": {sig},
		}, verify.ErrMalformedHeader},
		{"the canonical key wins over another spelling, as Header.Get", http.Header{
			"X-Staircase-Id": {testID}, "x-staircase-id": {"evt_other"},
			"X-Staircase-Timestamp": {ts}, "X-Staircase-Signature": {sig},
		}, nil},
		{"timestamp under two spellings", http.Header{
			"X-Staircase-Id":        {testID},
			"x-staircase-timestamp": {ts}, "X-STAIRCASE-TIMESTAMP": {"1764115201"},
			"X-Staircase-Signature": {sig},
		}, verify.ErrMalformedHeader},
		{"one lower-case spelling of each is fine", http.Header{
			"x-staircase-id": {testID}, "x-staircase-timestamp": {ts}, "x-staircase-signature": {sig},
		}, nil},
		{"signature lines under two spellings are read together", http.Header{
			"X-Staircase-Id": {testID}, "X-Staircase-Timestamp": {ts},
			"x-staircase-signature": {wrongSig}, "X-STAIRCASE-SIGNATURE": {sig},
		}, nil},
		{"a junk line under one spelling beside a good one", http.Header{
			"X-Staircase-Id": {testID}, "X-Staircase-Timestamp": {ts},
			"x-staircase-signature": {"hello"}, "X-Staircase-Signature": {sig},
		}, nil},
		{"a bad v1 entry under another spelling beside the canonical key is not read", http.Header{
			"X-Staircase-Id": {testID}, "X-Staircase-Timestamp": {ts},
			"x-staircase-signature": {"v1,AAAA"}, "X-Staircase-Signature": {sig},
		}, nil},
		{"a bad v1 entry under one of two other spellings spoils the whole", http.Header{
			"X-Staircase-Id": {testID}, "X-Staircase-Timestamp": {ts},
			"x-staircase-signature": {"v1,AAAA"}, "X-STAIRCASE-SIGNATURE": {sig},
		}, verify.ErrMalformedHeader},
		{"the entry limit counts every spelling", http.Header{
			"X-Staircase-Id": {testID}, "X-Staircase-Timestamp": {ts},
			"x-staircase-signature": {strings.Repeat(wrongSig+" ", 8) + sig},
			"X-STAIRCASE-SIGNATURE": {strings.Repeat(wrongSig+" ", 8)},
		}, verify.ErrMalformedHeader},
		{"webhook-id under two spellings", http.Header{
			"webhook-id": {testID}, "WEBHOOK-ID": {testID},
			"Webhook-Timestamp": {ts}, "Webhook-Signature": {sig},
		}, verify.ErrMalformedHeader},
	} {
		t.Run(c.name, func(t *testing.T) {
			for range 200 {
				res, err := v.Verify(c.h, testBody)
				if c.want == nil {
					require.NoError(t, err)
					require.Equal(t, "k", res.KeyLabel)
					continue
				}
				require.ErrorIs(t, err, c.want)
			}
		})
	}
}

func TestVerifyHints(t *testing.T) {
	s := mustSecret(t, s32)
	v := newTestVerifier(t, verify.Options{Keys: []verify.Key{{Label: "k", Secret: s}}})
	pretty := []byte("{\n  \"type\": \"signal.created\",\n  \"n\": 1\n}")
	compact := []byte(`{"type":"signal.created","n":1}`)
	bodyMAC := func(key, body []byte) string {
		m := hmac.New(sha256.New, key)
		m.Write(body)
		return hex.EncodeToString(m.Sum(nil))
	}
	for _, c := range []struct {
		name string
		h    http.Header
		body []byte
		want error
		hint string
	}{
		{"timestamp in the future", mustSign(t, testID, fixedNow.Add(312*time.Second), testBody, s), testBody, verify.ErrTimestampTooNew, "312 s in the future"},
		{"timestamp in the past", mustSign(t, testID, fixedNow.Add(-301*time.Second), testBody, s), testBody, verify.ErrTimestampTooOld, "301 s ago"},
		{"trailing newline added", mustSign(t, testID, fixedNow, testBody, s), append(append([]byte{}, testBody...), '\n'), verify.ErrNoMatchingSignature, "trailing newline was added"},
		{"trailing newline removed", mustSign(t, testID, fixedNow, append(append([]byte{}, testBody...), '\n'), s), testBody, verify.ErrNoMatchingSignature, "trailing newline was removed"},
		{"base64 body", mustSign(t, testID, fixedNow, testBody, s), []byte(base64.StdEncoding.EncodeToString(testBody)), verify.ErrNoMatchingSignature, "base64-encoded"},
		{"re-serialized body", mustSign(t, testID, fixedNow, compact, s), pretty, verify.ErrNoMatchingSignature, "re-serialized"},
		{"wrong secret", mustSign(t, testID, fixedNow, testBody, mustSecret(t, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")), testBody, verify.ErrNoMatchingSignature, "wrong secret"},
		{"body signature with the legacy mode off", http.Header{"X-Staircase-Signature": {bodyMAC(b32, testBody)}}, testBody, verify.ErrMalformedHeader, "AllowBodySignature"},
		{"unversioned junk", http.Header{"X-Staircase-Signature": {"hello"}}, testBody, verify.ErrMalformedHeader, "v1,<base64>"},
		{"only other versions", http.Header{"X-Staircase-Signature": {"v2,abc"}}, testBody, verify.ErrNoMatchingSignature, "other versions"},
		{"missing id", http.Header{"X-Staircase-Signature": {"v1,abc"}}, testBody, verify.ErrMalformedHeader, "x-staircase-id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(c.h, c.body)
			requireSentinel(t, err, c.want)
			if !strings.Contains(err.Error(), c.hint) {
				t.Fatalf("error %q lacks the hint %q", err, c.hint)
			}
		})
	}
	// Every key expired since the verifier was made (NewVerifier refuses a
	// keyring that has expired already).
	clock := fixedNow.Add(-time.Second)
	ex := newTestVerifier(t, verify.Options{Keys: []verify.Key{{Secret: s, Expires: fixedNow}}, Now: func() time.Time { return clock }})
	clock = fixedNow
	_, err := ex.Verify(mustSign(t, testID, fixedNow, testBody, s), testBody)
	requireSentinel(t, err, verify.ErrNoMatchingSignature)
	if !strings.Contains(err.Error(), "expired") {
		t.Fatalf("error %q does not say every key expired", err)
	}
}

// TestErrorsCarryNoSecrets runs every failure path and checks that no error
// text contains the secret, the MAC the verifier computed or the signature
// value it received.
func TestErrorsCarryNoSecrets(t *testing.T) {
	s := mustSecret(t, s32)
	ts := "1764115200"
	good := refMAC(b32, testID, ts, testBody)
	bodyOnly := hmac.New(sha256.New, b32)
	bodyOnly.Write(testBody)
	bodyMAC := bodyOnly.Sum(nil)
	digest := sha256.Sum256([]byte(s32))
	wrongKey := []byte("another key of thirty-two bytes!")
	wrong := refMAC(wrongKey, testID, ts, testBody)
	// Forms of material that must never appear.
	forbidden := map[string][]byte{"secret": b32, "v1 MAC": good, "body MAC": bodyMAC, "secret digest": digest[:], "received MAC": wrong}
	forms := func(b []byte) []string {
		return []string{string(b), hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)), base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b), base64.URLEncoding.EncodeToString(b), fmt.Sprint(b)}
	}
	hdr := func(id, ts, sig string) http.Header {
		return http.Header{"X-Staircase-Id": {id}, "X-Staircase-Timestamp": {ts}, "X-Staircase-Signature": {sig}}
	}
	wrong64 := base64.StdEncoding.EncodeToString(wrong)
	pretty := []byte(strings.ReplaceAll(string(testBody), ",", ", "))
	cases := []struct {
		opts verify.Options
		h    http.Header
		body []byte
	}{
		{verify.Options{}, hdr(testID, ts, "v1,"+wrong64), testBody},
		{verify.Options{}, hdr(testID, ts, "v1,"+wrong64), append(append([]byte{}, testBody...), '\n')},
		{verify.Options{}, hdr(testID, ts, "v1,"+wrong64), pretty},
		{verify.Options{}, hdr(testID, ts, "v1,"+wrong64[:43]), testBody},
		{verify.Options{}, hdr(testID, ts, "v1,"+wrong64+" v1,"+wrong64[1:]), testBody},
		{verify.Options{}, hdr(testID, "1764114000", "v1,"+wrong64), testBody},
		{verify.Options{}, hdr(testID, "1764119000", "v1,"+wrong64), testBody},
		{verify.Options{}, hdr("", ts, "v1,"+wrong64), testBody},
		{verify.Options{}, hdr(testID, "x", "v1,"+wrong64), testBody},
		{verify.Options{}, hdr(testID, ts, wrong64), testBody},
		{verify.Options{}, hdr(testID, ts, hex.EncodeToString(wrong)), testBody},
		{verify.Options{}, hdr(testID, ts, "sha256="+hex.EncodeToString(bodyMAC)), testBody},
		{verify.Options{}, hdr(testID, ts, "v2,"+wrong64), testBody},
		{verify.Options{AllowBodySignature: true}, hdr(testID, ts, hex.EncodeToString(wrong)), testBody},
		{verify.Options{AllowBodySignature: true}, hdr(testID, ts, hex.EncodeToString(wrong)[:63]), testBody},
		{verify.Options{AllowSecretDigest: true}, hdr(testID, ts, wrong64), testBody},
		{verify.Options{AllowSecretDigest: true}, hdr(testID, ts, wrong64+" "+wrong64), testBody},
	}
	for i, c := range cases {
		c.opts.Keys = []verify.Key{{Label: "k", Secret: s}}
		v := newTestVerifier(t, c.opts)
		_, err := v.Verify(c.h, c.body)
		if err == nil {
			t.Fatalf("case %d verified", i)
		}
		matched := 0
		for _, sentinel := range allSentinels {
			if errors.Is(err, sentinel) {
				matched++
			}
		}
		if matched != 1 {
			t.Fatalf("case %d: error %v matches %d sentinels, want 1", i, err, matched)
		}
		for what, b := range forbidden {
			for _, f := range forms(b) {
				if strings.Contains(err.Error(), f) {
					t.Fatalf("case %d: error %q contains the %s", i, err, what)
				}
			}
		}
		for _, f := range []string{s32, strings.TrimPrefix(s32, "whsec_"), wrong64[:20]} {
			if strings.Contains(err.Error(), f) {
				t.Fatalf("case %d: error %q contains secret or signature text", i, err)
			}
		}
	}
}

// TestLegacyResult checks the scheme and empty id of the legacy modes.
func TestLegacyResult(t *testing.T) {
	s := mustSecret(t, s32)
	m := hmac.New(sha256.New, b32)
	m.Write(testBody)
	v := newTestVerifier(t, verify.Options{Keys: []verify.Key{{Label: "k", Secret: s}}, AllowBodySignature: true, AllowSecretDigest: true})
	res, err := v.Verify(http.Header{"X-Staircase-Signature": {hex.EncodeToString(m.Sum(nil))}}, testBody)
	if err != nil || res.Scheme != verify.SchemeBody || res.ID != "" || !res.Timestamp.IsZero() || res.KeyLabel != "k" {
		t.Fatalf("body signature: %+v, %v", res, err)
	}
	d := sha256.Sum256([]byte(s32))
	res, err = v.Verify(http.Header{"X-Staircase-Signature": {hex.EncodeToString(d[:])}}, nil)
	if err != nil || res.Scheme != verify.SchemeSecretDigest || res.KeyLabel != "k" {
		t.Fatalf("secret digest: %+v, %v", res, err)
	}
}

// TestVerifyConcurrent shares one verifier between goroutines and keys;
// run with -race.
func TestVerifyConcurrent(t *testing.T) {
	a, b := mustSecret(t, s32), mustSecret(t, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	v := newTestVerifier(t, verify.Options{Keys: []verify.Key{{Label: "a", Secret: a}, {Label: "b", Secret: b}}})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key, label := a, "a"
			if g%2 == 1 {
				key, label = b, "b"
			}
			for i := 0; i < 200; i++ {
				body := []byte(fmt.Sprintf(`{"n":%d,"g":%d}`, i, g))
				h := mustSign(t, fmt.Sprintf("evt_%d_%d", g, i), fixedNow, body, key)
				res, err := v.Verify(h, body)
				if err != nil || res.KeyLabel != label {
					errs <- fmt.Errorf("goroutine %d request %d: %+v %v", g, i, res, err)
					return
				}
				if _, err := v.Verify(h, append(body, ' ')); !errors.Is(err, verify.ErrNoMatchingSignature) {
					errs <- fmt.Errorf("goroutine %d request %d: tampered body: %v", g, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestFromSecrets(t *testing.T) {
	other := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	v, err := verify.FromSecrets(" "+s32+"\n", other)
	if err != nil {
		t.Fatal(err)
	}
	if v.Tolerance() != verify.DefaultTolerance {
		t.Errorf("Tolerance() = %v, want the default", v.Tolerance())
	}
	for label, secret := range map[string]string{"key1": s32, "key2": other} {
		res, err := v.Verify(mustSign(t, testID, time.Now(), testBody, mustSecret(t, secret)), testBody)
		if err != nil || res.KeyLabel != label {
			t.Errorf("signed with the %s secret: %+v, %v", label, res, err)
		}
	}

	_, err = verify.FromSecrets()
	requireSentinel(t, err, verify.ErrInvalidOptions)
	for _, c := range []struct {
		name  string
		texts []string
		hint  string
	}{
		{"empty", []string{""}, "secret 1 of 1 is empty"},
		{"blank second", []string{s32, "  "}, "secret 2 of 2 is empty"},
		{"not base64", []string{s32, "whsec_not!base64"}, "secret 2 of 2"},
		{"too short", []string{"whsec_AAAA"}, "secret 1 of 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := verify.FromSecrets(c.texts...)
			if v != nil {
				t.Fatal("a verifier with an error")
			}
			requireSentinel(t, err, verify.ErrInvalidSecret)
			if !strings.Contains(err.Error(), c.hint) {
				t.Errorf("error %q lacks %q", err, c.hint)
			}
			for _, text := range c.texts {
				if strings.TrimSpace(text) != "" && strings.Contains(err.Error(), strings.TrimPrefix(strings.TrimSpace(text), "whsec_")) {
					t.Errorf("error %q quotes the secret's text", err)
				}
			}
		})
	}
}
