package event

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

// ErrInvalid means a body is not an event this package accepts: not a
// JSON object, a required field missing, a field of the wrong type, or a
// size bound passed. The server answers it 400 with the code invalid_event.
var ErrInvalid = errors.New("event: invalid event")

// Bounds of Decode, on top of the body cap of the verify middleware.
const (
	maxDepth     = 32       // nesting of JSON objects and arrays
	maxIDLen     = 256      // bytes of "id", as for the signed x-staircase-id
	maxTypeLen   = 128      // bytes of "type"
	maxStringLen = 16 << 10 // bytes of any other string, keys included
	maxPeople    = 200      // entries of "people"
)

// Decode decodes a signed request body into an Event. The body must be
// one JSON object with a non-empty "id" (at most 256 visible ASCII
// characters, like the signed x-staircase-id), a non-empty "type" (at most
// 128 bytes, no control characters) and a non-empty "account.id". Known
// fields must have the documented JSON types; unknown fields and unknown
// types are accepted and kept: Raw holds a copy of the body, and Fields the
// whole object decoded with numbers as json.Number.
//
// Keys match exactly, as in every other JSON parser: a known field is read
// only from its documented key ("id", not "ID" or "Id"), and a key that
// differs only in case is an unknown field, kept in Fields and otherwise
// ignored. So {"ID":"evt_1",…} has no id and is rejected, and the typed
// fields always agree with Fields.
//
// The two date-times, created_at and signal.detected_at, are read
// leniently: a value that is not an RFC 3339 string (empty, another
// format, a number) leaves the zero time, and the raw value stays in
// Fields. A bad date never costs the event: the sender does not retry a
// 400. A null value of any known field counts as absent.
//
// The work is bounded by the body: nesting deeper than 32 objects or
// arrays, any string or key longer than 16 KiB, or more than 200 people is
// rejected, and decoding allocates at most 64 bytes per byte of body
// (Fields holds every value; the path of a value is rendered only for an
// error). Every error wraps ErrInvalid and says what is wrong, without
// echoing the body.
func Decode(body []byte) (*Event, error) {
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
	if err := checkStrings(fields, &jsonPath{}); err != nil {
		return nil, err
	}
	ev, err := eventFromFields(fields)
	if err != nil {
		return nil, err
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
	}
	ev.Raw = append(json.RawMessage(nil), body...)
	ev.Fields = fields
	return ev, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// jsonProblem turns an encoding/json error into a message that names the
// offset but never quotes the body.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return "JSON syntax error at byte " + strconv.FormatInt(syn.Offset, 10)
	case errors.As(err, &typ):
		return "expected a JSON object, found " + typ.Value
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of JSON"
	}
	return "malformed JSON"
}

// eventFromFields fills an Event from the decoded body, reading each known
// field from its exact key only (encoding/json would also take "ID" for
// "id"). A known field of the wrong JSON type is an error; null is absent.
func eventFromFields(f map[string]any) (*Event, error) {
	r := fieldReader{}
	ev := &Event{
		ID:        r.str(f, "id", ""),
		Type:      r.str(f, "type", ""),
		CreatedAt: lenientTime(f["created_at"]),
		Test:      r.boolean(f, "test", ""),
	}
	if o := r.object(f, "webhook", ""); o != nil {
		ev.Webhook = Webhook{ID: r.str(o, "id", "webhook"), Label: r.str(o, "label", "webhook")}
	}
	if o := r.object(f, "notification", ""); o != nil {
		ev.Notification = Notification{ID: r.str(o, "id", "notification"), Name: r.str(o, "name", "notification")}
	}
	if o := r.object(f, "account", ""); o != nil {
		ev.Account = Account{
			ID:           r.str(o, "id", "account"),
			Name:         r.str(o, "name", "account"),
			Domain:       r.str(o, "domain", "account"),
			Status:       r.str(o, "status", "account"),
			StaircaseURL: r.str(o, "staircase_url", "account"),
		}
	}
	if o := r.object(f, "signal", ""); o != nil {
		ev.Signal = Signal{
			Title:      r.str(o, "title", "signal"),
			Summary:    r.str(o, "summary", "signal"),
			Severity:   r.str(o, "severity", "signal"),
			Sentiment:  r.str(o, "sentiment", "signal"),
			Category:   r.str(o, "category", "signal"),
			DetectedAt: lenientTime(o["detected_at"]),
		}
	}
	switch people := f["people"].(type) {
	case nil:
	case []any:
		if len(people) > maxPeople {
			return nil, invalid("more than %d people", maxPeople)
		}
		ev.People = make([]Person, 0, len(people))
		for i, p := range people {
			path := "people[" + strconv.Itoa(i) + "]"
			o, ok := p.(map[string]any)
			if !ok {
				if p != nil {
					r.fail(path, "an object", p)
				}
				ev.People = append(ev.People, Person{})
				continue
			}
			ev.People = append(ev.People, Person{
				Name:          r.str(o, "name", path),
				Email:         r.str(o, "email", path),
				Title:         r.str(o, "title", path),
				Role:          r.str(o, "role", path),
				Change:        r.str(o, "change", path),
				PreviousTitle: r.str(o, "previous_title", path),
			})
		}
	default:
		r.fail("people", "an array", people)
	}
	if r.err != nil {
		return nil, r.err
	}
	return ev, nil
}

// fieldReader reads known fields from decoded JSON objects and keeps the
// first type error, so the field list reads top to bottom.
type fieldReader struct{ err error }

func (r *fieldReader) fail(path, want string, v any) {
	if r.err == nil {
		r.err = invalid("field %s must be %s, found %s", path, want, jsonTypeOf(v))
	}
}

func (r *fieldReader) str(o map[string]any, key, parent string) string {
	switch v := o[key].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		r.fail(joinPath(parent, key), "a string", v)
		return ""
	}
}

func (r *fieldReader) boolean(o map[string]any, key, parent string) bool {
	switch v := o[key].(type) {
	case nil:
		return false
	case bool:
		return v
	default:
		r.fail(joinPath(parent, key), "true or false", v)
		return false
	}
}

func (r *fieldReader) object(o map[string]any, key, parent string) map[string]any {
	switch v := o[key].(type) {
	case nil:
		return nil
	case map[string]any:
		return v
	default:
		r.fail(joinPath(parent, key), "an object", v)
		return nil
	}
}

// lenientTime is v as an RFC 3339 date-time, or the zero time when v is
// anything else.
func lenientTime(v any) time.Time {
	s, ok := v.(string)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// jsonTypeOf names the JSON type of a value decoded with UseNumber.
func jsonTypeOf(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "bool"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return "null"
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
// id and type have tighter bounds, checked after typed decoding. The path
// of the value is kept as a stack of segments and rendered only for an
// error: rendering it for every value would cost the path's length per
// array element, a gigabyte for a megabyte of deeply nested numbers.
func checkStrings(v any, path *jsonPath) error {
	switch v := v.(type) {
	case string:
		if len(v) > maxStringLen {
			return invalid("string at %s longer than %d bytes", displayPath(path.String()), maxStringLen)
		}
	case map[string]any:
		for k, e := range v {
			if len(k) > maxStringLen {
				return invalid("key at %s longer than %d bytes", displayPath(path.String()), maxStringLen)
			}
			path.push(k, -1)
			if err := checkStrings(e, path); err != nil {
				return err
			}
			path.pop()
		}
	case []any:
		for i, e := range v {
			path.push("", i)
			if err := checkStrings(e, path); err != nil {
				return err
			}
			path.pop()
		}
	}
	return nil
}

// jsonPath is the path from the top of the body to the value being
// checked: one segment per object key or array index, bounded by maxDepth.
type jsonPath struct{ segs []pathSeg }

// pathSeg is an object key, or an array index when index >= 0.
type pathSeg struct {
	key   string
	index int
}

func (p *jsonPath) push(key string, index int) {
	p.segs = append(p.segs, pathSeg{key: key, index: index})
}

func (p *jsonPath) pop() { p.segs = p.segs[:len(p.segs)-1] }

// String renders the path as error messages show it, such as
// signal.title or people[1].role.
func (p *jsonPath) String() string {
	s := ""
	for _, seg := range p.segs {
		if seg.index >= 0 {
			s += "[" + strconv.Itoa(seg.index) + "]"
		} else {
			s = joinPath(s, seg.key)
		}
	}
	return s
}

// joinPath appends key to path, standing in "…" for a key too long or not
// valid UTF-8 to be worth showing.
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
