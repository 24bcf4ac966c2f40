package verify

import (
	"net/http"
	"slices"
	"strings"
)

// Limits of scheme v1 (see SPEC.md).
const (
	maxIDLen        = 256
	maxTimestampLen = 12
	maxHeaderLen    = 4096
	maxEntries      = 16
	maxEncodedSig   = 44 // standard base64 of 32 bytes, padded
)

// family names one set of the three headers, in canonical MIME form.
type family struct {
	id, timestamp, signature string
}

var (
	staircaseHeaders = family{"X-Staircase-Id", "X-Staircase-Timestamp", "X-Staircase-Signature"}
	standardHeaders  = family{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"}
)

// headers is a request's header map as Verify reads it. A map built by
// net/http holds canonical keys only, and the canonical key of a name is
// all that is read when present, as http.Header.Get does: finding the
// spellings of a name costs a walk over the whole map (about a seventh of
// a 1 KiB verification), which the common case must not pay. A map built
// by hand may spell a name otherwise, even under several keys at once;
// when the canonical key is absent, every spelling is read, as lines of one
// header, in sorted key order, so map order never decides the outcome.
type headers http.Header

// lines returns the value lists of canon: its canonical key's alone when
// present, else those of every key of h that spells it, in sorted key
// order; empty when there is none. The usual single list needs no
// allocation: one is the caller's room for it.
func (h headers) lines(one *[1][]string, canon string) [][]string {
	single, several, ok := h.values(canon)
	switch {
	case !ok:
		return nil
	case several != nil:
		return several
	}
	one[0] = single
	return one[:]
}

// values is lines without the caller's room: the one value list of canon,
// or, when it is spelled under several keys, their lists in sorted key
// order (a new slice); ok is false when h has no spelling of canon.
func (h headers) values(canon string) (single []string, several [][]string, ok bool) {
	if v, ok := h[canon]; ok {
		return v, nil, true
	}
	var keys []string
	for k := range h {
		// Equal lengths keep EqualFold to ASCII: no other rune folds to
		// an ASCII letter in one byte.
		if len(k) == len(canon) && strings.EqualFold(k, canon) {
			keys = append(keys, k)
		}
	}
	switch len(keys) {
	case 0:
		return nil, nil, false
	case 1:
		return h[keys[0]], nil, true
	}
	slices.Sort(keys)
	several = make([][]string, len(keys))
	for i, k := range keys {
		several[i] = h[k]
	}
	return nil, several, true
}

// single returns the only value of a header; several values, on one key or
// on several spellings of it, are ambiguous and so malformed.
func (h headers) single(canon string) (string, bool) {
	var one [1][]string
	lines := h.lines(&one, canon)
	if len(lines) != 1 || len(lines[0]) != 1 {
		return "", false
	}
	return lines[0][0], true
}

// nextEntry splits the first entry off s. Entries are separated by spaces;
// tabs are tolerated as separators too.
func nextEntry(s string) (entry, rest string) {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	s = s[i:]
	// IndexByte is vectorized; entries are about 47 bytes long.
	j := strings.IndexByte(s, ' ')
	if j < 0 {
		j = len(s)
	}
	if k := strings.IndexByte(s[:j], '\t'); k >= 0 {
		j = k
	}
	return s[:j], s[j:]
}

// sigSummary describes a signature header after one pass over it, without
// decoding anything.
type sigSummary struct {
	length    int // bytes over all values, separators included
	entries   int
	v1        int
	versioned int    // entries of the form <version>,<value>
	only      string // the entry, when there is exactly one
	firstV1   string // the first v1 entry, "v1," prefix included
}

// summarize fills s from the lines of a signature header.
func summarize(s *sigSummary, lines [][]string) {
	n := 0
	for _, values := range lines {
		for _, val := range values {
			s.length += len(val)
			if n > 0 {
				s.length++
			}
			n++
			for rest := val; ; {
				var e string
				e, rest = nextEntry(rest)
				if e == "" {
					break
				}
				s.entries++
				s.only = e
				if strings.HasPrefix(e, "v1,") {
					if s.v1 == 0 {
						s.firstV1 = e
					}
					s.v1++
				}
				if strings.IndexByte(e, ',') > 0 {
					s.versioned++
				}
			}
		}
	}
	if s.entries != 1 {
		s.only = ""
	}
}

// validID reports whether id is 1–256 visible ASCII characters.
func validID(id string) bool {
	if len(id) == 0 || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// parseTimestamp parses 1–12 decimal digits as Unix seconds.
func parseTimestamp(s string) (int64, bool) {
	if len(s) == 0 || len(s) > maxTimestampLen {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// decodeMAC decodes a 32-byte MAC given as 64 hex digits or as canonical
// standard base64 into dst, without allocating.
func decodeMAC(dst *[32]byte, s string) bool {
	if len(s) == 64 {
		for i := 0; i < 32; i++ {
			hi, ok1 := unhex(s[2*i])
			lo, ok2 := unhex(s[2*i+1])
			if !ok1 || !ok2 {
				return false
			}
			dst[i] = hi<<4 | lo
		}
		return true
	}
	return decodeBase64MAC(dst, s)
}

// decodeBase64MAC decodes canonical, padded standard base64 of exactly 32
// bytes: 43 characters of the alphabet, the last with its two unused bits
// zero, then "=". It is a hand-rolled encoding/base64 Strict decoder for
// this one length because it runs on every request, and it is stricter in
// one respect: it does not skip CR and LF. FuzzParseSignatureHeader checks
// it against encoding/base64.
func decodeBase64MAC(dst *[32]byte, s string) bool {
	if len(s) != maxEncodedSig || s[maxEncodedSig-1] != '=' {
		return false
	}
	// A fixed-size copy lets the compiler drop the bounds checks below.
	var src [maxEncodedSig]byte
	copy(src[:], s)
	var bad byte
	for i := 0; i < 10; i++ {
		a, b, c, d := b64Index[src[4*i]], b64Index[src[4*i+1]], b64Index[src[4*i+2]], b64Index[src[4*i+3]]
		bad |= a | b | c | d
		v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(d)
		dst[3*i], dst[3*i+1], dst[3*i+2] = byte(v>>16), byte(v>>8), byte(v)
	}
	a, b, c := b64Index[src[40]], b64Index[src[41]], b64Index[src[42]]
	bad |= a | b | c
	// Characters outside the alphabet map to 0xff; a canonical encoding
	// leaves the two low bits of the last character zero.
	if bad&0xc0 != 0 || c&3 != 0 {
		return false
	}
	v := uint32(a)<<12 | uint32(b)<<6 | uint32(c)
	dst[30], dst[31] = byte(v>>10), byte(v>>2)
	return true
}

// b64Index maps a standard base64 character to its 6-bit value and any
// other byte to 0xff.
var b64Index = func() (t [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
