package bench

import (
	"bytes"
	"crypto/sha256"
	"strconv"
	"testing"
	"time"
)

// benchID is the event id every signing scheme that signs an id receives.
const benchID = "msg_2Nq8bench4TQ5ZK1W9yXfE7vHcA"

// benchKey returns the 32 key bytes every library receives: derived from a
// fixed label so every run measures the same input.
func benchKey() []byte {
	k := sha256.Sum256([]byte("stairhook bench key"))
	return k[:]
}

// size is one body size under test; name is how it appears in benchmark
// names (size=1KiB).
type size struct {
	name string
	n    int
}

var sizes = []size{
	{"256B", 256},
	{"1KiB", 1 << 10},
	{"64KiB", 64 << 10},
	{"1MiB", 1 << 20},
}

// jsonBody returns a JSON object of exactly n bytes (n >= 64), shaped like a
// webhook event, so that peers which decode the payload accept it.
func jsonBody(n int) []byte {
	const head = `{"type":"signal.created","id":"` + benchID + `","data":{"text":"`
	const tail = `"}}`
	if n < len(head)+len(tail) {
		panic("body size too small: " + strconv.Itoa(n))
	}
	b := make([]byte, 0, n)
	b = append(b, head...)
	const filler = "the quick brown fox jumps over the lazy dog "
	for len(b) < n-len(tail) {
		r := n - len(tail) - len(b)
		b = append(b, filler[:min(r, len(filler))]...)
	}
	return append(b, tail...)
}

// input is what every library verifies: the same key bytes, id, timestamp
// and body. Each library signs it in its own header format.
type input struct {
	key  []byte
	id   string
	ts   time.Time
	body []byte
	// signed is id + "." + timestamp + "." + body: the bytes the v1
	// schemes MAC, and what the baseline hashes. body is its tail, so
	// that the baseline reads the same memory as the libraries do (with a
	// copy, the baseline alone would miss the cache at 1 MiB when the
	// libraries take turns).
	signed []byte
}

// newInput returns the input for one body size, timestamped now (to the
// second): peers without an injectable clock check the timestamp against
// time.Now, so every benchmark takes a fresh one when it starts.
func newInput(n int) input {
	in := input{key: benchKey(), id: benchID, ts: time.Now().Truncate(time.Second)}
	prefix := in.id + "." + in.tsText() + "."
	in.signed = append([]byte(prefix), jsonBody(n)...)
	in.body = in.signed[len(prefix):len(in.signed):len(in.signed)]
	return in
}

// tsText is the timestamp as Unix seconds in decimal.
func (in input) tsText() string { return strconv.FormatInt(in.ts.Unix(), 10) }

func TestInput(t *testing.T) {
	for _, s := range sizes {
		in := newInput(s.n)
		if len(in.body) != s.n || !bytes.Equal(in.body, jsonBody(s.n)) {
			t.Errorf("body of %s: %d bytes, not the JSON body", s.name, len(in.body))
		}
		if want := in.id + "." + in.tsText() + "." + string(in.body); string(in.signed) != want {
			t.Errorf("signed bytes of %s are not id.timestamp.body", s.name)
		}
	}
}
