package event

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The body of issue 14, item 8: an event whose unknown field nests 30
// objects, each under a 64-byte key, around an array of 500,000 numbers,
// just under the middleware's 1 MiB cap. A decoder that renders the path
// of every value it visits makes a ~2 KB path string per array element
// (1.08 GiB for this body); the path must be rendered only for an error.
const (
	deepKeyLevels = 30
	deepKeyLen    = 64
	wideArrayLen  = 500_000
	bodyCap       = 1 << 20 // verify.DefaultMaxBodyBytes
)

// deepKeysWideArray returns that body with an array of n numbers.
func deepKeysWideArray(n int) []byte {
	var b bytes.Buffer
	b.WriteString(strings.TrimSuffix(minimalEvent, "}"))
	for i := range deepKeyLevels {
		key := strconv.Itoa(i) + "_"
		key += strings.Repeat("k", deepKeyLen-len(key))
		if i == 0 {
			b.WriteString(`,"` + key + `":`)
		} else {
			b.WriteString(`{"` + key + `":`)
		}
	}
	b.WriteString("[0")
	for range n - 1 {
		b.WriteString(",0")
	}
	b.WriteString("]")
	b.WriteString(strings.Repeat("}", deepKeyLevels-1))
	b.WriteString("}")
	return b.Bytes()
}

// maxAllocPerBodyByte bounds what Decode allocates, in bytes per byte of
// body. Fields holds every value of the body as a generic Go value, which
// is encoding/json's own cost: a boxed value per array element and the
// growth of each slice (1.25 times at a time, so five times its final
// size), about 56 bytes per byte for an array of one-digit numbers, the
// densest kind of body. Rendering a path per value once cost 1,081.
const maxAllocPerBodyByte = 64

// denseArray returns an event whose unknown field is an array of n copies
// of elem, for the densest bodies of each kind of value.
func denseArray(elem string, n int) []byte {
	var b bytes.Buffer
	b.WriteString(strings.TrimSuffix(minimalEvent, "}") + `,"a":[` + elem)
	for range n - 1 {
		b.WriteString("," + elem)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// allocatedBy returns the bytes allocated while f runs, from the runtime's
// cumulative counter: deterministic for a given input, unlike timings.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestDecodeAllocationBoundedByBody(t *testing.T) {
	bodies := map[string][]byte{
		"30 levels of 64-byte keys around 500,000 numbers": deepKeysWideArray(wideArrayLen),
	}
	if !raceEnabled { // the same figures, ten times slower
		bodies["empty objects"] = denseArray("{}", bodyCap/3-100)
		bodies["empty arrays"] = denseArray("[]", bodyCap/3-100)
		bodies["empty strings"] = denseArray(`""`, bodyCap/3-100)
		bodies["short keys"] = denseArray(`{"k":0}`, bodyCap/8-100)
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			require.LessOrEqual(t, len(body), bodyCap, "the body fits the middleware's cap")
			ev, err := Decode(body)
			require.NoError(t, err, "a valid event: every value is visited")
			require.NotNil(t, ev.Fields)

			n := allocatedBy(func() { _, _ = Decode(body) })
			t.Logf("%d bytes allocated for a %d-byte body: %.1f per byte", n, len(body), float64(n)/float64(len(body)))
			assert.LessOrEqual(t, n, uint64(maxAllocPerBodyByte*len(body)), "allocation is a small multiple of the body")
		})
	}
}

// An error deep inside such a body still names the whole path.
func TestDecodeErrorPathDeepInside(t *testing.T) {
	const n = 1000
	body := deepKeysWideArray(n)
	at := bytes.LastIndex(body, []byte(",0]"))
	long := `"` + strings.Repeat("s", maxStringLen+1) + `"`
	bad := append(append(append([]byte(nil), body[:at+1]...), long...), body[at+2:]...)
	_, err := Decode(bad)
	require.ErrorIs(t, err, ErrInvalid)
	msg := err.Error()
	assert.Contains(t, msg, "string at 0_"+strings.Repeat("k", deepKeyLen-2)+".1_")
	assert.Contains(t, msg, "29_"+strings.Repeat("k", deepKeyLen-3)+"["+strconv.Itoa(n-1)+"] longer than 16384 bytes")
}

func BenchmarkDecodeDeepKeysWideArray(b *testing.B) {
	body := deepKeysWideArray(wideArrayLen)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}
