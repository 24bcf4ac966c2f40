package verify

import (
	"encoding/base64"
	"net/http"
	"strings"
)

// Limits of scheme v1 (see SPEC.md).
const (
	maxIDLen        = 256
	maxTimestampLen = 12
	maxHeaderLen    = 4096
	maxEntries      = 16
	maxEncodedSig   = 44 // standard base64 of 32 bytes, padded
	base64SigBuf    = 33 // base64.StdEncoding.DecodedLen(44)
)

// b64 is canonical, padded standard base64; kept in a variable because
// Strict returns a new Encoding on each call.
var b64 = base64.StdEncoding.Strict()

// family names one set of the three headers, in canonical MIME form.
type family struct {
	id, timestamp, signature string
}

var (
	staircaseHeaders = family{"X-Staircase-Id", "X-Staircase-Timestamp", "X-Staircase-Signature"}
	standardHeaders  = family{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"}
)

// header returns the values of the header named canon. A map built by
// net/http holds canonical keys; one built by hand may not, so when the
// canonical key is absent the keys are compared case-insensitively.
func header(h http.Header, canon string) ([]string, bool) {
	if v, ok := h[canon]; ok {
		return v, true
	}
	for k, v := range h {
		if len(k) == len(canon) && strings.EqualFold(k, canon) {
			return v, true
		}
	}
	return nil, false
}

// single returns the only value of a header; several values are ambiguous
// and so malformed.
func single(h http.Header, canon string) (string, bool) {
	v, ok := header(h, canon)
	if !ok || len(v) != 1 {
		return "", false
	}
	return v[0], true
}

// nextEntry splits the first space-separated entry off s.
func nextEntry(s string) (entry, rest string) {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	j := i
	for j < len(s) && s[j] != ' ' && s[j] != '\t' {
		j++
	}
	return s[i:j], s[j:]
}

// sigSummary describes a signature header without decoding anything.
type sigSummary struct {
	length    int // bytes over all values, separators included
	entries   int
	v1        int
	versioned int    // entries of the form <version>,<value>
	only      string // the entry, when there is exactly one
}

func summarize(values []string) sigSummary {
	var s sigSummary
	for i, val := range values {
		s.length += len(val)
		if i > 0 {
			s.length++
		}
		for rest := val; ; {
			var e string
			e, rest = nextEntry(rest)
			if e == "" {
				break
			}
			s.entries++
			s.only = e
			if strings.HasPrefix(e, "v1,") {
				s.v1++
			}
			if strings.IndexByte(e, ',') > 0 {
				s.versioned++
			}
		}
	}
	if s.entries != 1 {
		s.only = ""
	}
	return s
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

// decodeBase64MAC decodes canonical standard base64 of exactly 32 bytes.
func decodeBase64MAC(dst *[32]byte, s string) bool {
	if len(s) != maxEncodedSig {
		return false
	}
	var text [maxEncodedSig]byte
	var out [base64SigBuf]byte
	copy(text[:], s)
	n, err := b64.Decode(out[:], text[:])
	if err != nil || n != 32 {
		return false
	}
	copy(dst[:], out[:32])
	return true
}

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
