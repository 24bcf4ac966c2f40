// Package verifytest builds signed webhook requests for tests, the way
// net/http/httptest builds plain ones: a correctly signed request for a
// handler behind [verify.Verifier.Middleware], one signed with several
// secrets as during a rotation, and the common wrong ones (tampered body,
// stale or future timestamp, wrong secret) to check that the handler
// rejects them.
//
// Like [httptest.NewRequest], the request builders panic on invalid input (a
// zero Secret, an id that is not 1–256 visible ASCII characters): they are
// meant for tests, where such input is a bug in the test.
//
// [TestStore] checks a verify.Store of your own against the interface's
// contract, as testing/fstest.TestFS does for file systems, and
// [TestStoreWallClock] checks that its ttls run out on the clock the
// Verifier checks timestamps by.
package verifytest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/stairhook/stairhook/verify"
)

// SignedHeaders returns the X-Staircase-Id, X-Staircase-Timestamp and
// X-Staircase-Signature headers for body, signed with secret at ts.
func SignedHeaders(secret verify.Secret, id string, ts time.Time, body []byte) http.Header {
	return signedHeaders([]verify.Secret{secret}, id, ts, body)
}

func signedHeaders(secrets []verify.Secret, id string, ts time.Time, body []byte) http.Header {
	s, err := verify.NewSigner(secrets...)
	if err != nil {
		panic("verifytest: " + err.Error())
	}
	h, err := s.Sign(id, ts, body)
	if err != nil {
		panic("verifytest: " + err.Error())
	}
	return h
}

// NewRequest returns a POST request for target (a path or an absolute URL,
// as for httptest.NewRequest) carrying body, signed with secret, id and ts.
// It is an incoming server request, ready for http.Handler.ServeHTTP.
func NewRequest(secret verify.Secret, id string, ts time.Time, target string, body []byte) *http.Request {
	return request(SignedHeaders(secret, id, ts, body), target, body)
}

// RotationRequest returns a request like NewRequest signed with each of
// secrets, one v1 entry per secret in the order given, as a sender that
// holds the old and the new secret during a rotation signs. A verifier
// accepts it with the first of its keys, in keyring order, that matches
// any entry. It panics for no secret, or more than 16.
func RotationRequest(secrets []verify.Secret, id string, ts time.Time, target string, body []byte) *http.Request {
	return request(signedHeaders(secrets, id, ts, body), target, body)
}

// TamperedBody returns a request like NewRequest whose body differs from the
// signed one by a single bit (or, for an empty body, by one added byte), as
// if changed in transit. A verifier answers it ErrNoMatchingSignature.
func TamperedBody(secret verify.Secret, id string, ts time.Time, target string, body []byte) *http.Request {
	h := SignedHeaders(secret, id, ts, body)
	changed := append([]byte(nil), body...)
	if len(changed) == 0 {
		changed = []byte{'x'}
	} else {
		changed[len(changed)/2] ^= 0x01
	}
	return request(h, target, changed)
}

// StaleTimestamp returns a request like NewRequest signed one second before
// now minus tolerance, as a replayed or long-delayed request would be. A
// verifier with that tolerance and clock answers it ErrTimestampTooOld.
func StaleTimestamp(secret verify.Secret, id string, now time.Time, tolerance time.Duration, target string, body []byte) *http.Request {
	return NewRequest(secret, id, now.Add(-tolerance-time.Second), target, body)
}

// FutureTimestamp returns a request like NewRequest signed one second after
// now plus tolerance, as a sender with a fast clock would. A verifier with
// that tolerance and clock answers it ErrTimestampTooNew.
func FutureTimestamp(secret verify.Secret, id string, now time.Time, tolerance time.Duration, target string, body []byte) *http.Request {
	return NewRequest(secret, id, now.Add(tolerance+time.Second), target, body)
}

// WrongSecret returns a request like NewRequest signed with a fresh random
// secret, which no verifier holds. A verifier answers it
// ErrNoMatchingSignature.
func WrongSecret(id string, ts time.Time, target string, body []byte) *http.Request {
	s, err := verify.NewSecret()
	if err != nil {
		panic("verifytest: " + err.Error())
	}
	return NewRequest(s, id, ts, target, body)
}

func request(h http.Header, target string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	for k, v := range h {
		r.Header[k] = v
	}
	r.Header.Set("Content-Type", "application/json")
	return r
}
