package lambda_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/lambda"
)

// allocFactor bounds the bytes the adapter allocates to handle one event,
// as a multiple of the event's size. The event is input, so some
// allocation proportional to it is unavoidable: encoding/json copies every
// string out of it (once in aws-lambda-go's event type), the adapter builds
// an http.Header and a query string from those strings, and a map entry, a
// canonical header name and a []string cost a few dozen bytes even for a
// one-byte header. What must not happen is work that grows faster than the
// event (re-joining a growing header per value, copying the whole event per
// header) or that is proportional to something the event only names, such
// // as a huge Content-Length. The worst cases measured are many tiny headers
// and many cookies, at 15 to 18 bytes allocated per event byte (a 16-byte
// header entry in the JSON becomes two map entries, three strings and a
// slice); one huge header, a long query string or the largest body cost 1
// to 2 bytes per event byte. The bound leaves room for where the map sizes
// fall between growth steps and for the race detector; a quadratic path
// would exceed it many times over at these sizes.
const allocFactor = 24

// allocBase is the fixed cost of one invocation, whatever its size: the
// request, the response writer and the response JSON of a small event.
const allocBase = 64 << 10

// bytesAllocated returns the average heap bytes allocated by one Invoke of
// payload. The caller has invoked it once already, so one-time
// initialisation is not counted.
func bytesAllocated(t *testing.T, h *lambda.Handler, payload []byte) uint64 {
	t.Helper()
	const runs = 2
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		if _, err := h.Invoke(context.Background(), payload); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}

// TestAllocationBound checks that handling an event allocates no more than
// allocBase + allocFactor × its size, for events that are large in every
// way an HTTP trigger allows within the 16 MiB event cap and the 1 MiB
// header cap: one huge header value, many headers, a long query string, many
// cookies, many query parameters, and a large body.
func TestAllocationBound(t *testing.T) {
	if testing.Short() {
		t.Skip("builds events of several MiB")
	}
	// A quarter of the header cap: large enough that a path quadratic in
	// the number of headers or cookies would blow the bound, small enough
	// for a quick run under the race detector.
	const headerRoom = headerLimit / 4
	manyHeaders := map[string]string{}
	for i := 0; len(manyHeaders)*len("x-h000000: v\r\n") < headerRoom; i++ {
		manyHeaders[fmt.Sprintf("x-h%06d", i)] = "v"
	}
	var cookies []string
	for n := 0; n < headerRoom; n += len("c=1; ") {
		cookies = append(cookies, "c=1")
	}
	manyParams := map[string][]string{}
	for i := range 25_000 {
		manyParams[fmt.Sprintf("p%06d", i)] = []string{"v"}
	}

	cases := []struct {
		name  string
		event []byte
	}{
		{"small", v2Event(t, "POST", "/", map[string]string{"content-type": "application/json"}, `{"id":"evt_1"}`, false)},
		{"one huge header value", bigHeaderEvent(t, headerLimit)},
		{"many headers", v2Event(t, "POST", "/", manyHeaders, "", false)},
		{"long query string", withFields(t, v2Event(t, "POST", "/", nil, "", false), map[string]any{
			"rawQueryString": strings.Repeat("a=b&", 1<<18), // 1 MiB, 2.25 MiB once setField escapes & as \u0026

		})},
		{"many cookies", withFields(t, v2Event(t, "POST", "/", nil, "", false), map[string]any{"cookies": cookies})},
		{"many multi-value query parameters", restEvent(t, manyParams)},
		{"base64 body", v2Event(t, "POST", "/", nil, strings.Repeat("QUJD", 1<<18), true)},
	}
	h := lambda.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := h.Invoke(context.Background(), c.event)
			require.NoError(t, err)
			require.Equalf(t, http.StatusNoContent, parseReply(t, out).StatusCode, "the event must reach the handler")
			n := bytesAllocated(t, h, c.event)
			limit := allocBase + allocFactor*uint64(len(c.event))
			t.Logf("event %d bytes, allocated %d bytes (%.1f per event byte), limit %d", len(c.event), n, float64(n)/float64(len(c.event)), limit)
			if n > limit {
				t.Errorf("allocated %d bytes for a %d-byte event; the bound is %d + %d × size = %d", n, len(c.event), allocBase, allocFactor, limit)
			}
		})
	}
}

// withFields returns the event with top-level fields replaced.
func withFields(t testing.TB, payload []byte, fields map[string]any) []byte {
	t.Helper()
	for k, v := range fields {
		payload = setField(t, payload, k, v)
	}
	return payload
}

// restEvent is a REST API event with the given multi-value query
// parameters.
func restEvent(t testing.TB, query map[string][]string) []byte {
	t.Helper()
	out, err := json.Marshal(map[string]any{
		"httpMethod":                      "POST",
		"path":                            "/",
		"multiValueQueryStringParameters": query,
		"requestContext":                  map[string]any{"stage": "prod", "requestId": "r1"},
	})
	require.NoError(t, err)
	return out
}
