package verify

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"time"
)

// Signer signs outgoing webhook requests. The sending service holds one per
// endpoint. It is safe for concurrent use.
type Signer struct {
	macs []*keyMAC
}

// NewSigner returns a Signer for one or more secrets. With several secrets
// (during a rotation) every request carries one v1 entry per secret, so
// receivers holding either secret accept it.
func NewSigner(secrets ...Secret) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, withHint(ErrInvalidSecret, "no secret")
	}
	if len(secrets) > maxEntries {
		return nil, withHint(ErrInvalidSecret, "more than 16 secrets")
	}
	s := &Signer{}
	for _, sec := range secrets {
		if !sec.valid() {
			return nil, ErrInvalidSecret
		}
		s.macs = append(s.macs, newKeyMAC(sec.key))
	}
	return s, nil
}

// String describes the signer without key material, so a *Signer is safe
// in %v, %+v and logs.
func (s *Signer) String() string {
	return "verify.Signer(" + strconv.Itoa(len(s.macs)) + " secrets, redacted)"
}

// GoString returns the same form as String, so %#v is safe too.
func (s *Signer) GoString() string { return s.String() }

// Sign returns the three headers X-Staircase-Id, X-Staircase-Timestamp and
// X-Staircase-Signature for body, signed at ts. The id must be 1–256 visible
// ASCII characters and stay the same across retries of one event; ts must
// lie between the Unix epoch and year 33658 (12 decimal digits). A new
// timestamp, and so a new signature, belongs on every attempt. It fails
// with ErrInvalidID or ErrInvalidTimestamp otherwise.
func (s *Signer) Sign(id string, ts time.Time, body []byte) (http.Header, error) {
	if !validID(id) {
		return nil, withHint(ErrInvalidID, "id must be 1 to 256 visible ASCII characters")
	}
	sec := ts.Unix()
	if sec < 0 || sec > 999_999_999_999 {
		return nil, withHint(ErrInvalidTimestamp, "timestamp outside 0 to 999999999999 Unix seconds")
	}
	tsText := strconv.FormatInt(sec, 10)
	sig := make([]byte, 0, len(s.macs)*(3+maxEncodedSig+1))
	for i, m := range s.macs {
		if i > 0 {
			sig = append(sig, ' ')
		}
		st := m.get()
		mac := st.signedContent(id, tsText, body)
		sig = append(sig, "v1,"...)
		sig = base64.StdEncoding.AppendEncode(sig, mac)
		m.put(st)
	}
	h := make(http.Header, 3)
	h["X-Staircase-Id"] = []string{id}
	h["X-Staircase-Timestamp"] = []string{tsText}
	h["X-Staircase-Signature"] = []string{string(sig)}
	return h, nil
}
