package receiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// ErrInvalidEvent means a body is not an event this package accepts: not a
// JSON object, a required field missing, a field of the wrong type, or a
// size bound passed. The server answers it 400 with the code invalid_event.
var ErrInvalidEvent = errors.New("receiver: invalid event")

// Bounds of DecodeEvent, on top of the body cap of the verify middleware.
const (
	maxDepth     = 32       // nesting of JSON objects and arrays
	maxIDLen     = 256      // bytes of "id", as for the signed x-staircase-id
	maxTypeLen   = 128      // bytes of "type"
	maxStringLen = 16 << 10 // bytes of any other string, keys included
	maxPeople    = 200      // entries of "people"
)

// DecodeEvent decodes a signed request body into an Event. The body must be
// one JSON object with a non-empty "id" (at most 256 visible ASCII
// characters, like the signed x-staircase-id), a non-empty "type" (at most
// 128 bytes, no control characters) and a non-empty "account.id". Known
// fields must have the documented JSON types; unknown fields and unknown
// types are accepted and kept: Raw holds a copy of the body, and Fields the
// whole object decoded with numbers as json.Number.
//
// The work is bounded by the body: nesting deeper than 32 objects or
// arrays, any string or key longer than 16 KiB, or more than 200 people is
// rejected. Every error wraps ErrInvalidEvent and says what is wrong,
// without echoing the body.
func DecodeEvent(body []byte) (*Event, error) {
	if err := checkDepth(body); err != nil {
		return nil, err
	}
	var fields map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&fields); err != nil {
		return nil, invalid("body is not a JSON object: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("body has data after the JSON object")
	}
	if fields == nil {
		return nil, invalid("body is not a JSON object: null")
	}
	if err := checkStrings(fields, ""); err != nil {
		return nil, err
	}
	ev := &Event{}
	if err := json.Unmarshal(body, ev); err != nil {
		return nil, invalid("%s", jsonProblem(err))
	}
	switch {
	case ev.ID == "":
		return nil, invalid("missing id")
	case len(ev.ID) > maxIDLen:
		return nil, invalid("id longer than %d bytes", maxIDLen)
	case !visibleASCII(ev.ID):
		return nil, invalid("id must be visible ASCII characters")
	case ev.Type == "":
		return nil, invalid("missing type")
	case len(ev.Type) > maxTypeLen:
		return nil, invalid("type longer than %d bytes", maxTypeLen)
	case hasControl(ev.Type):
		return nil, invalid("type contains a control character")
	case ev.Account.ID == "":
		return nil, invalid("missing account.id")
	case len(ev.People) > maxPeople:
		return nil, invalid("more than %d people", maxPeople)
	}
	ev.Raw = append(json.RawMessage(nil), body...)
	ev.Fields = fields
	return ev, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, args...))
}

// jsonProblem turns an encoding/json error into a message that names the
// field and the offset but never quotes the body.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return "JSON syntax error at byte " + strconv.FormatInt(syn.Offset, 10)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return "expected a JSON object, found " + typ.Value
		}
		return "field " + typ.Field + " must be " + jsonKind(typ.Type.Kind().String()) + ", found " + typ.Value
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of JSON"
	}
	// time.Time's own errors quote the offending text; name the fields
	// instead.
	var terr *time.ParseError
	if errors.As(err, &terr) {
		return "created_at or signal.detected_at is not an RFC 3339 date-time"
	}
	return "a date-time field is not an RFC 3339 string"
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "struct", "map":
		return "an object"
	case "slice":
		return "an array"
	}
	return "a " + k
}

// checkDepth rejects nesting deeper than maxDepth before anything is decoded,
// so no decoder recursion or allocation follows hostile nesting. It tracks
// strings so brackets inside them do not count; malformed JSON is left to
// the decoder.
func checkDepth(body []byte) error {
	depth := 0
	inString, escaped := false, false
	for _, c := range body {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > maxDepth {
				return invalid("JSON nested deeper than %d levels", maxDepth)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// checkStrings bounds every decoded string and key, known fields or not;
// id and type have tighter bounds, checked after typed decoding.
func checkStrings(v any, path string) error {
	switch v := v.(type) {
	case string:
		if len(v) > maxStringLen {
			return invalid("string at %s longer than %d bytes", displayPath(path), maxStringLen)
		}
	case map[string]any:
		for k, e := range v {
			if len(k) > maxStringLen {
				return invalid("key at %s longer than %d bytes", displayPath(path), maxStringLen)
			}
			if err := checkStrings(e, joinPath(path, k)); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range v {
			if err := checkStrings(e, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	}
	return nil
}

func joinPath(path, key string) string {
	if len(key) > 64 || !utf8.ValidString(key) {
		key = "…"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func displayPath(p string) string {
	if p == "" {
		return "the top level"
	}
	return p
}

func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}
