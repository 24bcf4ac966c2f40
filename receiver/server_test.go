package receiver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

func TestServerDelivers(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	// The churn_risk sample names a decision-maker: both routes match.
	rec := h.post("evt_a", eventBody(t, event.TypeChurnRisk, "evt_a", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	r := decodeResponse(t, rec)
	assert.Equal(t, "delivered", r.Status)
	assert.Equal(t, map[string]string{riskJira: "delivered", riskEmail: "delivered", peopleEmail: "delivered"}, outcomes(r))
	assert.Equal(t, []string{riskJira, riskEmail, peopleEmail}, []string{r.Sinks[0].Name, r.Sinks[1].Name, r.Sinks[2].Name}, "configuration order")
	for _, name := range []string{riskJira, riskEmail, peopleEmail} {
		assert.Equal(t, []string{"evt_a"}, h.sink(name).ids())
	}
	ev := h.sink(riskJira).calls[0]
	assert.Equal(t, "Acme Corp", ev.Account.Name)
	assert.NotEmpty(t, ev.Raw)

	// One log line for the delivery, with what an operator needs.
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		require.NoError(t, json.Unmarshal([]byte(l), &line))
		if line["msg"] == "delivery" {
			break
		}
	}
	assert.Equal(t, "delivery", line["msg"])
	assert.Equal(t, "evt_a", line["id"])
	assert.Equal(t, event.TypeChurnRisk, line["type"])
	assert.Equal(t, "acc_01J9Z3K7QK2V8M4N6P0R2T4V6X", line["account"])
	assert.Equal(t, "current", line["key"])
	assert.Equal(t, "staircase", line["webhook"])
	assert.EqualValues(t, 200, line["status"])
	assert.Equal(t, map[string]any{riskJira: "delivered", riskEmail: "delivered", peopleEmail: "delivered"}, line["sinks"])
	assert.Contains(t, line, "duration_ms")

	// Redelivered after success: the middleware answers, no sink runs.
	h.now = h.now.Add(time.Minute)
	rec = h.post("evt_a", eventBody(t, event.TypeChurnRisk, "evt_a", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "true", rec.Header().Get(verify.DuplicateHeader))
	for _, name := range []string{riskJira, riskEmail, peopleEmail} {
		assert.Len(t, h.sink(name).ids(), 1, name)
	}
	// The redelivery gets its own line too, though the middleware
	// answered it.
	var deliveries []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		if m["msg"] == "delivery" {
			deliveries = append(deliveries, m)
		}
	}
	require.Len(t, deliveries, 2, h.logs.String())
	dup := deliveries[1]
	assert.Equal(t, "duplicate", dup["outcome"])
	assert.Equal(t, "evt_a", dup["id"])
	assert.Equal(t, "staircase", dup["webhook"])
	assert.EqualValues(t, 200, dup["status"])
}

func TestServerRouting(t *testing.T) {
	noPeople := func(m map[string]any) { m["people"] = []any{} }
	tests := []struct {
		name  string
		typ   string
		edit  func(map[string]any)
		sinks []string
		test  bool
	}{
		{"type and role", event.TypeChurnRisk, nil, []string{riskJira, riskEmail, peopleEmail}, false},
		{"type only", event.TypeChurnRisk, noPeople, []string{riskJira, riskEmail}, false},
		{"role only", event.TypeAccountPersonnelChange, nil, []string{peopleEmail}, false},
		{"role case ignored", event.TypeRenewal, func(m map[string]any) {
			m["people"] = []any{map[string]any{"name": "X", "role": "Decision_Maker"}}
		}, []string{peopleEmail}, false},
		{"unknown type with a decision-maker", event.TypeRenewal, func(m map[string]any) { m["type"] = "brand_new_type" }, []string{peopleEmail}, false},
		{"test event goes through the same routes", event.TypeChurnRisk, func(m map[string]any) { m["test"] = true; noPeople(m) }, []string{riskJira, riskEmail}, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, ServerOptions{})
			id := fmt.Sprintf("evt_route_%d", i)
			rec := h.post(id, eventBody(t, tt.typ, id, tt.edit))
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			var called []string
			for _, name := range []string{riskJira, riskEmail, peopleEmail} {
				if len(h.sink(name).ids()) > 0 {
					called = append(called, name)
					assert.Equal(t, tt.test, h.sink(name).calls[0].Test)
				}
			}
			assert.Equal(t, tt.sinks, called)
		})
	}

	t.Run("no route matches", func(t *testing.T) {
		h := newHarness(t, nil, ServerOptions{})
		rec := h.post("evt_x", eventBody(t, event.TypeRenewal, "evt_x", noPeople))
		require.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, "ignored", decodeResponse(t, rec).Status)
		for _, f := range h.sinks {
			assert.Empty(t, f.ids())
		}
	})
}

func TestServerPartialFailureRetry(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	body := eventBody(t, event.TypeChurnRisk, "evt_p", nil)
	h.sink(riskEmail).fail(errors.New("smtp: 451 try again later"))

	rec := h.post("evt_p", body)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "5", rec.Header().Get("Retry-After"))
	r := decodeResponse(t, rec)
	assert.Equal(t, "retry", r.Status)
	assert.Equal(t, "sink_unavailable", r.Error.Code)
	assert.Equal(t, map[string]string{riskJira: "delivered", riskEmail: "failed", peopleEmail: "delivered"}, outcomes(r))

	// The sender retries: only the failed sink runs.
	h.now = h.now.Add(5 * time.Second)
	rec = h.post("evt_p", body)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, map[string]string{riskJira: "skipped", riskEmail: "delivered", peopleEmail: "skipped"}, outcomes(decodeResponse(t, rec)))
	assert.Len(t, h.sink(riskJira).ids(), 1)
	assert.Len(t, h.sink(riskEmail).ids(), 2)
	assert.Len(t, h.sink(peopleEmail).ids(), 1)
	_, err := os.Stat(filepath.Join(h.outbox, DeadLetterFile))
	assert.ErrorIs(t, err, os.ErrNotExist, "no dead letter for a transient failure")
}

func TestServerRetryAfter(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	h.sink(riskJira).fail(&RetryAfterError{Err: errors.New("jira 429"), After: 30 * time.Second})
	h.sink(riskEmail).fail(&RetryAfterError{Err: errors.New("smtp 421"), After: 1500 * time.Millisecond})
	rec := h.post("evt_r", eventBody(t, event.TypeChurnRisk, "evt_r", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "30", rec.Header().Get("Retry-After"), "the longest delay asked")

	h.sink(riskJira).fail(&RetryAfterError{Err: errors.New("jira 429"), After: 48 * time.Hour})
	rec = h.post("evt_r2", eventBody(t, event.TypeChurnRisk, "evt_r2", nil))
	assert.Equal(t, "3600", rec.Header().Get("Retry-After"), "capped")
}

func TestServerPermanentFailure(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	body := eventBody(t, event.TypeChurnRisk, "evt_d", nil)
	h.sink(riskEmail).fail(Permanent(errors.New("smtp: 550 no such user")))

	rec := h.post("evt_d", body)
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code, rec.Body.String())
	r := decodeResponse(t, rec)
	assert.Equal(t, "rejected", r.Status)
	assert.Equal(t, "sink_rejected", r.Error.Code)
	assert.Contains(t, r.Error.Message, riskEmail)
	assert.NotContains(t, rec.Body.String(), "550 no such user", "the sink's error text stays in the log and the dead letter")
	assert.Equal(t, map[string]string{riskJira: "delivered", riskEmail: "rejected", peopleEmail: "delivered"}, outcomes(r))

	path := filepath.Join(h.outbox, DeadLetterFile)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	recs, err := ReadDeadLetters(f)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, "evt_d", recs[0].EventID)
	assert.Equal(t, "staircase", recs[0].Webhook)
	assert.Equal(t, riskEmail, recs[0].Sink)
	assert.Contains(t, recs[0].Error, "550 no such user")
	assert.True(t, recs[0].Time.Equal(h.now))
	assert.JSONEq(t, string(body), string(recs[0].Body))

	// A replay of the dead letter once fixed runs only the rejected sink.
	h.now = h.now.Add(time.Hour)
	rec = h.post("evt_d", recs[0].Body)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, map[string]string{riskJira: "skipped", riskEmail: "delivered", peopleEmail: "skipped"}, outcomes(decodeResponse(t, rec)))
}

func TestServerTransientWinsOverPermanent(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	h.sink(riskJira).fail(Permanent(errors.New("jira 400: project does not exist")))
	h.sink(riskEmail).fail(errors.New("connection reset"))
	rec := h.post("evt_m", eventBody(t, event.TypeChurnRisk, "evt_m", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	_, err := os.Stat(filepath.Join(h.outbox, DeadLetterFile))
	assert.ErrorIs(t, err, os.ErrNotExist, "dead letters only with the 422")
}

func TestServerSinkPanic(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	h.sink(riskJira).panics = true
	rec := h.post("evt_panic", eventBody(t, event.TypeChurnRisk, "evt_panic", nil))
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code)
	assert.Equal(t, "sink_rejected", decodeResponse(t, rec).Error.Code)
	assert.NotContains(t, rec.Body.String(), "panicked")
	h.sink(riskJira).panics = false
	h.now = h.now.Add(time.Second)
	rec = h.post("evt_panic", eventBody(t, event.TypeChurnRisk, "evt_panic", nil))
	require.Equal(t, http.StatusOK, rec.Code, "the reservation was released")
	assert.Len(t, h.sink(riskJira).ids(), 2)
}

func TestServerDeadLetterWriteFails(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	// The outbox is a file, so the dead-letter file cannot be created.
	blocker := filepath.Join(h.outbox, "blocker")
	require.NoError(t, os.WriteFile(blocker, nil, 0o600))
	h.srv.deadLetters.path = filepath.Join(blocker, DeadLetterFile)
	h.sink(riskEmail).fail(Permanent(errors.New("550")))
	rec := h.post("evt_dl", eventBody(t, event.TypeChurnRisk, "evt_dl", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "dead_letter_unavailable", decodeResponse(t, rec).Error.Code)
	assert.NotEmpty(t, rec.Header().Get("Retry-After"))
}

func TestServerBadRequests(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		id     string
		body   string
		status int
		code   string
	}{
		{"not JSON", "/webhooks/staircase", "evt_1", "hello", 400, "invalid_event"},
		{"missing account.id", "/webhooks/staircase", "evt_1", `{"id":"evt_1","type":"churn_risk","account":{}}`, 400, "invalid_event"},
		{"missing id", "/webhooks/staircase", "evt_1", `{"type":"churn_risk","account":{"id":"a"}}`, 400, "invalid_event"},
		{"too deep", "/webhooks/staircase", "evt_1", withField(`"x":` + nested(40)), 400, "invalid_event"},
		{"id differs from the signed id", "/webhooks/staircase", "evt_signed", `{"id":"evt_other","type":"churn_risk","account":{"id":"a"}}`, 400, "id_mismatch"},
		{"no such path", "/hooks/staircase", "evt_1", minimalEvent, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, ServerOptions{})
			rec := h.postTo(tt.path, tt.id, []byte(tt.body))
			require.Equal(t, tt.status, rec.Code, rec.Body.String())
			r := decodeResponse(t, rec)
			assert.Equal(t, tt.code, r.Error.Code)
			assert.NotEmpty(t, r.Error.Message)
			for _, f := range h.sinks {
				assert.Empty(t, f.ids())
			}
			if tt.status == 400 {
				// The id was released: a corrected retry is processed.
				h.now = h.now.Add(time.Second)
				rec = h.post(tt.id, eventBody(t, event.TypeChurnRisk, tt.id, nil))
				assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			}
		})
	}

	t.Run("unsigned", func(t *testing.T) {
		h := newHarness(t, nil, ServerOptions{})
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/webhooks/staircase", strings.NewReader(minimalEvent)))
		assert.Equal(t, http.StatusBadRequest, rec.Code)
		assert.Equal(t, "missing_signature", decodeResponse(t, rec).Error.Code)
	})
	for _, tt := range []struct{ method, path, allow string }{
		{http.MethodGet, "/webhooks/staircase", "POST"},
		{http.MethodPut, "/webhooks/other", "POST"},
		{http.MethodPost, "/healthz", "GET, HEAD"},
		{http.MethodDelete, "/healthz", "GET, HEAD"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			h := newHarness(t, nil, ServerOptions{})
			rec := httptest.NewRecorder()
			h.srv.Handler().ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
			assert.Equal(t, tt.allow, rec.Header().Get("Allow"), "a 405 must list the allowed methods")
			assert.Equal(t, "method_not_allowed", decodeResponse(t, rec).Error.Code)
		})
	}
}

func TestServerConcurrentDuplicates(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	hold := make(chan struct{})
	h.sink(riskJira).hold = hold
	body := eventBody(t, event.TypeChurnRisk, "evt_c", nil)

	const n = 16
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- h.post("evt_c", body).Code
		}()
	}
	// All but the one holding the id are answered while it still runs.
	for range n - 1 {
		assert.Equal(t, http.StatusConflict, <-codes)
	}
	close(hold)
	wg.Wait()
	assert.Equal(t, http.StatusOK, <-codes)
	for _, name := range []string{riskJira, riskEmail, peopleEmail} {
		assert.Len(t, h.sink(name).ids(), 1, name)
	}
}

func TestNewServerRejectsInvalidConfig(t *testing.T) {
	_, err := NewServer(nil, ServerOptions{Inline: true})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	cfg := DefaultConfig("whsec_short", "", t.TempDir())
	_, err = NewServer(cfg, ServerOptions{Inline: true, Logger: slog.New(slog.DiscardHandler)})
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "webhooks[0].secrets[0].secret")
	assert.NotContains(t, err.Error(), "whsec_short")
}

func TestServerWarnsOnUnknownType(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Webhooks[0].Routes[0].When.Types = append(cfg.Webhooks[0].Routes[0].When.Types, "churn_rsik")
	h := newHarness(t, cfg, ServerOptions{})
	assert.Contains(t, h.logs.String(), `"type":"churn_rsik"`)
}

// TestServerNeverLeaks drives every failure path and checks that no
// response or log line carries the secret (in any encoding) or a signature.
func TestServerNeverLeaks(t *testing.T) {
	store := &flakyStore{Store: verify.NewMemoryStore(verify.MemoryStoreOptions{})}
	h := newHarness(t, nil, ServerOptions{Store: store})
	var seen bytes.Buffer
	var sigs []string
	record := func(rec *httptest.ResponseRecorder) {
		seen.Write(rec.Body.Bytes())
		for k, v := range rec.Header() {
			fmt.Fprintf(&seen, "%s: %s\n", k, v)
		}
	}
	body := eventBody(t, event.TypeChurnRisk, "evt_l", nil)
	sign := func(id string, b []byte) *http.Request {
		req := verifytest.NewRequest(h.secret, id, h.now, "/webhooks/staircase", b)
		sigs = append(sigs, req.Header.Get("X-Staircase-Signature"))
		return req
	}
	serve := func(req *http.Request) {
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, req)
		record(rec)
	}
	serve(verifytest.TamperedBody(h.secret, "evt_l", h.now, "/webhooks/staircase", body))
	serve(verifytest.WrongSecret("evt_l", h.now, "/webhooks/staircase", body))
	serve(verifytest.StaleTimestamp(h.secret, "evt_l", h.now, verify.DefaultTolerance, "/webhooks/staircase", body))
	serve(sign("evt_l", []byte("not json")))
	serve(sign("evt_other", body))
	h.sink(riskJira).fail(errors.New("transient"), Permanent(errors.New("permanent")))
	serve(sign("evt_l", body))
	serve(sign("evt_l", body))
	dup := eventBody(t, event.TypeChurnRisk, "evt_dup", nil)
	serve(sign("evt_dup", dup))
	serve(sign("evt_dup", dup)) // answered and logged as a duplicate
	store.failReserve.Store(true)
	serve(sign("evt_l", body))

	out := seen.String() + h.logs.String()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(testSecret, "whsec_"))
	require.NoError(t, err)
	for _, s := range []string{testSecret, strings.TrimPrefix(testSecret, "whsec_"), string(key), fmt.Sprintf("%x", key)} {
		assert.NotContains(t, out, s)
	}
	for _, sig := range sigs {
		assert.NotContains(t, out, strings.TrimPrefix(sig, "v1,"))
	}
}

// BenchmarkServerDelivery measures deliveries through the whole handler:
// router, verify middleware with the memory store, decoding, routing, the
// ledger and the sinks of one route, for a ~1.3 KiB sample with a fresh id
// each time. "nop" sinks do nothing, isolating the server; "dry-run" are
// the zero-configuration default, writing a Jira request and a MIME message
// per event into a temporary outbox.
func BenchmarkServerDelivery(b *testing.B) {
	b.Run("sinks=nop", func(b *testing.B) {
		cfg := testConfig(b.TempDir())
		cfg.Webhooks[0].Routes = cfg.Webhooks[0].Routes[:1]
		benchDelivery(b, cfg, true)
	})
	b.Run("sinks=dry-run", func(b *testing.B) {
		benchDelivery(b, DefaultConfig(testSecret, "", b.TempDir()), false)
	})
}

func benchDelivery(b *testing.B, cfg *Config, nop bool) {
	srv, err := NewServer(cfg, ServerOptions{Inline: true, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	defer srv.Close()
	if nop {
		for _, rt := range srv.hooks["staircase"].routes {
			for i, s := range rt.sinks {
				rt.sinks[i] = nopSink(s.Name())
			}
		}
	}
	secret, err := verify.ParseSecret(testSecret)
	require.NoError(b, err)
	signer, err := verify.NewSigner(secret)
	require.NoError(b, err)
	sample, err := event.Sample(event.TypeChurnRisk)
	require.NoError(b, err)
	const oldID = `"evt_01JD3QX8M2A1B4C6D8E0F2G4H6"`
	require.Contains(b, string(sample), oldID)
	handler := srv.Handler()

	// Bodies and headers are made outside the timer; the timer covers the
	// server only.
	type item struct {
		body []byte
		hdr  http.Header
	}
	items := make([]item, b.N)
	now := time.Now()
	for i := range items {
		id := fmt.Sprintf("evt_bench_%012d", i)
		body := bytes.Replace(sample, []byte(oldID), []byte(`"`+id+`"`), 1)
		hdr, err := signer.Sign(id, now, body)
		require.NoError(b, err)
		items[i] = item{body, hdr}
	}
	b.SetBytes(int64(len(sample)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range items {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/staircase", bytes.NewReader(items[i].body))
		req.Header = items[i].hdr
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

type nopSink string

func (n nopSink) Name() string                                { return string(n) }
func (n nopSink) Deliver(context.Context, *event.Event) error { return nil }

// TestServerUnknownWebhookNotEnumerable checks that a webhook name that is
// not configured is answered exactly as a real webhook answers a request
// it cannot verify, so the names cannot be listed by probing.
func TestServerUnknownWebhookNotEnumerable(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	wrong, err := verify.NewSecret()
	require.NoError(t, err)
	body := eventBody(t, event.TypeChurnRisk, "evt_probe", nil)
	requests := map[string]func(path string) *http.Request{
		"unsigned": func(path string) *http.Request {
			return httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		},
		"signed with another secret": func(path string) *http.Request {
			return verifytest.NewRequest(wrong, "evt_probe", h.now, path, body)
		},
		"signed with the real secret": func(path string) *http.Request {
			return verifytest.NewRequest(h.secret, "evt_probe", h.now, path, body)
		},
		"malformed timestamp": func(path string) *http.Request {
			r := verifytest.NewRequest(wrong, "evt_probe", h.now, path, body)
			r.Header.Set("X-Staircase-Timestamp", "soon")
			return r
		},
		"stale": func(path string) *http.Request {
			return verifytest.NewRequest(wrong, "evt_probe", h.now.Add(-time.Hour), path, body)
		},
		"body over the cap": func(path string) *http.Request {
			return verifytest.NewRequest(wrong, "evt_probe", h.now, path, bytes.Repeat([]byte("a"), 2<<20))
		},
	}
	answer := func(r *http.Request) (int, string, http.Header) {
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, r)
		hdr := rec.Header().Clone()
		hdr.Del("Date")
		return rec.Code, rec.Body.String(), hdr
	}
	for name, req := range requests {
		t.Run(name, func(t *testing.T) {
			wantStatus, wantBody, wantHeader := answer(req("/webhooks/staircase"))
			if name == "signed with the real secret" {
				// The real webhook accepts it; a name it is not configured
				// for must refuse it as it refuses a wrong secret.
				require.Less(t, wantStatus, 300)
				wantStatus, wantBody, wantHeader = answer(requests["signed with another secret"]("/webhooks/staircase"))
			}
			require.GreaterOrEqual(t, wantStatus, 400)
			for _, unknown := range []string{"/webhooks/other", "/webhooks/staircase2", "/webhooks/" + strings.Repeat("x", 300)} {
				status, body, header := answer(req(unknown))
				assert.Equal(t, wantStatus, status, unknown)
				assert.Equal(t, wantBody, body, unknown)
				assert.Equal(t, wantHeader, header, unknown)
			}
		})
	}
	for _, f := range h.sinks {
		assert.Len(t, f.ids(), 1, "only the real webhook's accepted request is delivered")
	}
}
