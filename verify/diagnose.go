package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
)

// decodeBase64Body returns the decoded body when the whole body is base64
// text, as when a proxy or a Lambda event hands over the encoded form.
func decodeBase64Body(body []byte) ([]byte, bool) {
	b := bytes.TrimSpace(body)
	if len(b) < 4 {
		return nil, false
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		out := make([]byte, enc.DecodedLen(len(b)))
		n, err := enc.Decode(out, b)
		if err == nil {
			return out[:n], true
		}
	}
	return nil, false
}

// compactJSON returns the body with insignificant JSON white space removed,
// when it is JSON and the result differs: what a framework that parsed and
// re-encoded the body would produce.
func compactJSON(body []byte) ([]byte, bool) {
	if !json.Valid(body) {
		return nil, false
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, body); err != nil || bytes.Equal(buf.Bytes(), body) {
		return nil, false
	}
	return buf.Bytes(), true
}
