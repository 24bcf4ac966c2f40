package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"hash"
	"sync"
)

// maxPrefix is the longest signed-content prefix: id (256) + "." +
// timestamp (12) + ".".
const maxPrefix = maxIDLen + 1 + maxTimestampLen + 1

// macState is one reusable HMAC-SHA256 with scratch space, so that computing
// a MAC allocates nothing. crypto/hmac keeps the keyed inner and outer
// states after the first use and restores them on Reset, so the key
// schedule is paid once per pooled state, not once per request.
type macState struct {
	h      hash.Hash
	prefix [maxPrefix]byte
	sum    [sha256.Size]byte
}

// keyMAC hands out macStates for one key.
type keyMAC struct {
	pool sync.Pool
}

func newKeyMAC(key []byte) *keyMAC {
	k := append([]byte(nil), key...)
	m := &keyMAC{}
	m.pool.New = func() any {
		s := &macState{h: hmac.New(sha256.New, k)}
		return s
	}
	return m
}

func (m *keyMAC) get() *macState  { return m.pool.Get().(*macState) }
func (m *keyMAC) put(s *macState) { m.pool.Put(s) }

// signedContent computes HMAC(key, id + "." + ts + "." + body) into s.sum.
func (s *macState) signedContent(id, ts string, body []byte) []byte {
	n := copy(s.prefix[:], id)
	s.prefix[n] = '.'
	n++
	n += copy(s.prefix[n:], ts)
	s.prefix[n] = '.'
	n++
	s.h.Reset()
	s.h.Write(s.prefix[:n])
	s.h.Write(body)
	return s.h.Sum(s.sum[:0])
}

// bodyOnly computes HMAC(key, body) into s.sum.
func (s *macState) bodyOnly(body []byte) []byte {
	s.h.Reset()
	s.h.Write(body)
	return s.h.Sum(s.sum[:0])
}

// matchesSigned reports whether the v1 MAC of id, ts and body under this key
// equals one of sigs. Every entry is compared, in constant time.
func (m *keyMAC) matchesSigned(id, ts string, body []byte, sigs [][32]byte) bool {
	st := m.get()
	mac := st.signedContent(id, ts, body)
	matched := 0
	for i := range sigs {
		matched |= subtle.ConstantTimeCompare(mac, sigs[i][:])
	}
	m.put(st)
	return matched == 1
}
