package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// Limits under test, as documented: the signature header (SPEC.md and
// verify's ErrMalformedHeader: 4096 bytes, 16 entries), the body cap
// (verify.DefaultMaxBodyBytes), the event decoder (event.Decode:
// nesting 32, strings 16 KiB, 200 people, type 128 bytes) and the template output
// (receiver.MaxTemplateOutput).
const (
	maxSignatureHeader = 4096
	maxSignatureEntry  = 16
	maxDepth           = 32
	maxString          = 16 << 10
	maxPeople          = 200
	maxType            = 128
)

// code returns the stable error code of a JSON error answer.
func code(t testing.TB, body string) string {
	t.Helper()
	var v struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &v), "body %q", body)
	return v.Error.Code
}

// signatureWith returns signed headers for body whose signature header
// holds the valid v1 entry followed by entries of an unknown version (which
// verifiers ignore), padded so that the header has exactly length bytes
// and entries entries (length 0: no padding).
func signatureWith(t testing.TB, secret verify.Secret, id string, body []byte, length, entries int) http.Header {
	t.Helper()
	h := verifytest.SignedHeaders(secret, id, time.Now(), body)
	sig := h.Get("X-Staircase-Signature")
	parts := []string{sig}
	for range entries - 1 {
		parts = append(parts, "v9,AA")
	}
	v := strings.Join(parts, " ")
	// Grow the last entry to the exact length.
	if length > 0 {
		require.LessOrEqual(t, len(v), length)
		v += strings.Repeat("A", length-len(v))
		require.Len(t, v, length)
	}
	h.Set("X-Staircase-Signature", v)
	return h
}

// paddedEvent returns the sample event id with an unknown field "pad", an
// array of strings no longer than the string limit, so that the body is
// exactly size bytes (white space inside the array absorbs the rest).
func paddedEvent(t testing.TB, id string, size int) []byte {
	t.Helper()
	base := eventBody(t, event.TypeChurnRisk, id, func(m map[string]any) { m["pad"] = []string{} })
	need := size - len(base)
	require.Positive(t, need)
	var b strings.Builder
	for {
		c := 2 // quotes
		if b.Len() > 0 {
			c++ // comma
		}
		n := min(maxString, need-c)
		if n < 0 {
			break
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + strings.Repeat("p", n) + `"`)
		need -= c + n
	}
	b.WriteString(strings.Repeat(" ", need))
	out := strings.Replace(string(base), `"pad":[]`, `"pad":[`+b.String()+`]`, 1)
	require.Len(t, out, size)
	return []byte(out)
}

// TestBounds checks every bound one past its limit, in inline mode and on
// the queued path: the same limits hold before an event is delivered or
// accepted. Accepted is 200 in inline mode (delivered) and 202 queued.
func TestBounds(t *testing.T) {
	t.Parallel()
	t.Run("inline", func(t *testing.T) { t.Parallel(); testBounds(t, false) })
	t.Run("queued", func(t *testing.T) { t.Parallel(); testBounds(t, true) })
}

func testBounds(t *testing.T, queued bool) {
	r := newRig(t, rigOptions{
		Queued: queued,
		// Sizes, not time, are under test: a 200-person issue checked
		// against the ADF schema under -race on a busy machine can take
		// longer than the fault tests' 2 s.
		JiraTimeout:     15 * time.Second,
		DeliveryTimeout: 30 * time.Second,
		// The text part repeats the summary once per person, then the
		// account name: 16 × 16383 + 16 bytes is exactly the cap.
		EmailRoute: `, text: "{{range .People}}{{$.Signal.Summary}}{{end}}{{.Account.Name}}"`,
	})
	accepted := http.StatusOK
	if queued {
		accepted = http.StatusAccepted
	}
	n := 0
	nextID := func() string { n++; return fmt.Sprintf("evt_bound_%03d", n) }

	t.Run("signature header at 4096 bytes passes, 4097 is 400", func(t *testing.T) {
		id := nextID()
		body := eventBody(t, event.TypeRenewal, id, nil)
		resp := postRaw(t, r.url, signatureWith(t, r.secret, id, body, maxSignatureHeader, 2), body)
		assert.Equal(t, accepted, resp.StatusCode, resp.Body)
		id = nextID()
		body = eventBody(t, event.TypeRenewal, id, nil)
		resp = postRaw(t, r.url, signatureWith(t, r.secret, id, body, maxSignatureHeader+1, 2), body)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Equal(t, "malformed_header", code(t, resp.Body))
		assert.Zero(t, issuesFor(r.jira, id))
	})
	t.Run("16 signature entries pass, 17 are 400", func(t *testing.T) {
		id := nextID()
		body := eventBody(t, event.TypeRenewal, id, nil)
		h := signatureWith(t, r.secret, id, body, 0, maxSignatureEntry)
		resp := postRaw(t, r.url, h, body)
		assert.Equal(t, accepted, resp.StatusCode, resp.Body)
		id = nextID()
		body = eventBody(t, event.TypeRenewal, id, nil)
		h = signatureWith(t, r.secret, id, body, 0, maxSignatureEntry+1)
		resp = postRaw(t, r.url, h, body)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Equal(t, "malformed_header", code(t, resp.Body))
	})
	t.Run("body at the cap is delivered, one byte over is 413", func(t *testing.T) {
		id := nextID()
		body := paddedEvent(t, id, verify.DefaultMaxBodyBytes)
		resp := r.post(t, id, body)
		assert.Equal(t, accepted, resp.StatusCode, resp.Body)
		r.expect(t, 1, func() int { return issuesFor(r.jira, id) }, "issues for the body at the cap")
		id = nextID()
		body = paddedEvent(t, id, verify.DefaultMaxBodyBytes+1)
		resp = r.post(t, id, body)
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		assert.Equal(t, "body_too_large", code(t, resp.Body))
		assert.Zero(t, issuesFor(r.jira, id))
	})
	t.Run("nesting 32 passes, 33 is 400 invalid_event", func(t *testing.T) {
		nested := func(depth int) func(map[string]any) {
			// The event object is level 1.
			return func(m map[string]any) {
				var v any = "x"
				for range depth - 1 {
					v = []any{v}
				}
				m["deep"] = v
			}
		}
		id := nextID()
		resp := r.post(t, id, eventBody(t, event.TypeRenewal, id, nested(maxDepth)))
		assert.Equal(t, accepted, resp.StatusCode, resp.Body)
		id = nextID()
		resp = r.post(t, id, eventBody(t, event.TypeRenewal, id, nested(maxDepth+1)))
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Equal(t, "invalid_event", code(t, resp.Body))
	})
	t.Run("string of 16 KiB passes, one byte more is 400 invalid_event", func(t *testing.T) {
		long := func(n int) func(map[string]any) {
			return func(m map[string]any) {
				m["account"].(map[string]any)["domain"] = strings.Repeat("d", n)
			}
		}
		id := nextID()
		resp := r.post(t, id, eventBody(t, event.TypeRenewal, id, long(maxString)))
		assert.Equal(t, accepted, resp.StatusCode, resp.Body)
		id = nextID()
		resp = r.post(t, id, eventBody(t, event.TypeRenewal, id, long(maxString+1)))
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Equal(t, "invalid_event", code(t, resp.Body))
		// An unknown field is bounded too.
		id = nextID()
		resp = r.post(t, id, eventBody(t, event.TypeRenewal, id, func(m map[string]any) { m["extra"] = strings.Repeat("e", maxString+1) }))
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Equal(t, "invalid_event", code(t, resp.Body))
	})
	t.Run("type of 128 bytes passes, 129 is 400; a key of 16 KiB + 1 is 400", func(t *testing.T) {
		typ := func(n int) func(map[string]any) {
			return func(m map[string]any) { m["type"] = strings.Repeat("t", n) }
		}
		id := nextID()
		resp := r.post(t, id, eventBody(t, event.TypeRenewal, id, typ(maxType)))
		assert.Equal(t, accepted, resp.StatusCode, resp.Body)
		r.expect(t, 1, func() int { return issuesFor(r.jira, id) }, "issues: an unknown type is routed")
		id = nextID()
		resp = r.post(t, id, eventBody(t, event.TypeRenewal, id, typ(maxType+1)))
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Equal(t, "invalid_event", code(t, resp.Body))
		id = nextID()
		resp = r.post(t, id, eventBody(t, event.TypeRenewal, id, func(m map[string]any) { m[strings.Repeat("k", maxString)] = 1 }))
		assert.Equal(t, accepted, resp.StatusCode, resp.Body)
		id = nextID()
		resp = r.post(t, id, eventBody(t, event.TypeRenewal, id, func(m map[string]any) { m[strings.Repeat("k", maxString+1)] = 1 }))
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Equal(t, "invalid_event", code(t, resp.Body))
	})
	t.Run("200 people pass, 201 are 400 invalid_event", func(t *testing.T) {
		people := func(n int) func(map[string]any) {
			return func(m map[string]any) {
				var ps []any
				for i := range n {
					ps = append(ps, map[string]any{"name": fmt.Sprintf("P%d", i), "role": "user"})
				}
				m["people"] = ps
			}
		}
		id := nextID()
		resp := r.post(t, id, eventBody(t, event.TypeRenewal, id, people(maxPeople)))
		assert.Equal(t, accepted, resp.StatusCode, resp.Body)
		id = nextID()
		resp = r.post(t, id, eventBody(t, event.TypeRenewal, id, people(maxPeople+1)))
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Equal(t, "invalid_event", code(t, resp.Body))
	})
	t.Run("template output at the cap is sent, one byte over is 422", func(t *testing.T) {
		const per = maxString - 1
		people := 16
		nameLen := receiver.MaxTemplateOutput - people*per
		require.Positive(t, nameLen)
		edit := func(name int) func(map[string]any) {
			return func(m map[string]any) {
				var ps []any
				for i := range people {
					ps = append(ps, map[string]any{"name": fmt.Sprintf("P%d", i)})
				}
				m["people"] = ps
				m["signal"].(map[string]any)["summary"] = strings.Repeat("s", per)
				m["account"].(map[string]any)["name"] = strings.Repeat("n", name)
			}
		}
		id := nextID()
		resp := r.post(t, id, eventBody(t, event.TypeRenewal, id, edit(nameLen)))
		assert.Equal(t, accepted, resp.StatusCode, resp.Body)
		r.expect(t, 1, func() int { return mailsFor(r.smtp, id) }, "emails for the output at the cap")
		id = nextID()
		resp = r.post(t, id, eventBody(t, event.TypeRenewal, id, edit(nameLen+1)))
		var found bool
		if queued {
			// Accepted, then the email's job is a dead letter.
			assert.Equal(t, http.StatusAccepted, resp.StatusCode, resp.Body)
			for _, d := range r.waitDeliveredOrDead(t) {
				if d.EventID == id && d.Sink == sinkEmail {
					found = true
					assert.Contains(t, d.Error, "MaxTemplateOutput")
					assert.Equal(t, 1, d.Attempts, "a permanent failure is not retried")
				}
			}
		} else {
			assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, resp.Body)
			assert.Equal(t, "sink_rejected", code(t, resp.Body))
			for _, d := range readDeadLetters(t, r.outbox) {
				if d.EventID == id && d.Sink == sinkEmail {
					found = true
					assert.Contains(t, d.Error, "MaxTemplateOutput")
				}
			}
		}
		assert.Zero(t, mailsFor(r.smtp, id))
		assert.True(t, found, "dead-letter record for the email sink")
	})
}
