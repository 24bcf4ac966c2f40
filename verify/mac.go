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
// a MAC allocates nothing. crypto/hmac restores the keyed inner and outer
// states on Reset instead of hashing the padded key again.
type macState struct {
	h      hash.Hash
	prefix [maxPrefix]byte
	sum    [sha256.Size]byte
}

// keyMAC hands out macStates for one key. The keyed inner and outer states
// are computed once, in the template; the pool hands out clones of it, so a
// pool emptied by the garbage collector costs a copy, never the key
// schedule again.
type keyMAC struct {
	template hash.Cloner
	pool     sync.Pool
}

func newKeyMAC(key []byte) *keyMAC {
	k := append([]byte(nil), key...)
	h := hmac.New(sha256.New, k)
	h.Reset() // the first Reset after New saves the keyed states
	m := &keyMAC{}
	if c, ok := h.(hash.Cloner); ok {
		if _, err := c.Clone(); err == nil {
			m.template = c
		}
	}
	m.pool.New = func() any {
		if m.template != nil {
			if c, err := m.template.Clone(); err == nil {
				return &macState{h: c}
			}
		}
		return &macState{h: hmac.New(sha256.New, k)}
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
