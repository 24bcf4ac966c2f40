package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/event"
	sinkpkg "github.com/stairhook/stairhook/receiver/sink"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// The admin listener serves the console and /metrics behind the token;
// the accept and work paths move the metrics and record refused requests
// and key uses; the webhook listener serves none of it.
func TestAdminListener(t *testing.T) {
	h := newQueuedHarness(t, nil, ServerOptions{}, false)
	public, _, _ := h.serve()
	token, generated := h.srv.AdminToken()
	require.True(t, generated, "no admin.token in the config: one is generated")
	require.GreaterOrEqual(t, len(token), 32)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.srv.ServeAdmin(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	admin := "http://" + l.Addr().String()
	get := func(base, path, bearer string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		require.NoError(t, err)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// Requests: accepted, a duplicate, unsigned, a wrong signature, and a
	// webhook name that is not configured.
	body := eventBody(t, event.TypeChurnRisk, "evt_m1", nil)
	for range 2 {
		resp, err := h.send(public, "evt_m1", body)
		require.NoError(t, err)
		resp.Body.Close()
	}
	post := func(path string, hdr http.Header) int {
		req, err := http.NewRequest(http.MethodPost, public+path, bytes.NewReader(body))
		require.NoError(t, err)
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusBadRequest, post("/webhooks/staircase", nil))
	wrong, err := verify.NewSecret()
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, post("/webhooks/staircase", verifytest.SignedHeaders(wrong, "evt_m2", h.now, body)))
	assert.Equal(t, http.StatusUnauthorized, post("/webhooks/nosuch", verifytest.SignedHeaders(wrong, "evt_m3", h.now, body)))
	waitCalls(t, h.sink("staircase.risk.jira"), 1)

	// The metrics, with the token only.
	status, _ := get(admin, "/metrics", "")
	assert.Contains(t, []int{http.StatusUnauthorized, http.StatusSeeOther, http.StatusFound}, status, "no token, no metrics")
	status, _ = get(admin, "/metrics", "wrong-token-wrong-token-wrong")
	assert.Contains(t, []int{http.StatusUnauthorized, http.StatusTooManyRequests}, status)
	require.Eventually(t, func() bool {
		status, text := get(admin, "/metrics", token)
		return status == http.StatusOK && strings.Contains(text, `stairhook_sink_attempts_total{outcome="delivered",sink="staircase.risk.jira"} 1`)
	}, 10*time.Second, 50*time.Millisecond)
	_, text := get(admin, "/metrics", token)
	for _, want := range []string{
		`stairhook_requests_total{outcome="accepted",reason="",webhook="staircase"} 1`,
		`stairhook_requests_total{outcome="duplicate",reason="",webhook="staircase"} 1`,
		`stairhook_requests_total{outcome="refused",reason="missing_signature",webhook="staircase"} 1`,
		`stairhook_requests_total{outcome="refused",reason="no_matching_signature",webhook="staircase"} 1`,
		`stairhook_requests_total{outcome="refused",reason="no_matching_signature",webhook="(other)"} 1`,
		`stairhook_key_uses_total{key="current",webhook="staircase"} 2`,
		`stairhook_verify_duration_seconds_count{webhook="staircase"} 2`,
	} {
		assert.Contains(t, text, want)
	}
	n, err := testutil.GatherAndCount(h.srv.registry, "stairhook_delivery_latency_seconds")
	require.NoError(t, err)
	assert.Positive(t, n)
	assert.NotContains(t, text, "evt_m", "no event id in a label")

	// The refused requests and key uses reach the database for the console.
	require.Eventually(t, func() bool {
		status, text := get(admin, "/api/refused", token)
		return status == http.StatusOK && strings.Contains(text, "missing_signature") && strings.Contains(text, "nosuch")
	}, 10*time.Second, 100*time.Millisecond)
	_, keys := get(admin, "/api/keys", token)
	var anyJSON any
	require.NoError(t, json.Unmarshal([]byte(keys), &anyJSON), keys)
	assert.Contains(t, keys, "current")
	assert.NotContains(t, keys, testSecret)

	// The webhook listener serves none of the admin routes.
	for _, path := range []string{"/metrics", "/", "/events", "/api/refused", "/login"} {
		status, text := get(public, path, token)
		assert.Equal(t, http.StatusNotFound, status, path)
		assert.NotContains(t, text, "stairhook_requests_total")
	}
}

// admin.listen: off builds no console; a short admin.token is refused,
// without being quoted.
func TestAdminConfig(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Admin.Listen = AdminOff
	h := newQueuedHarness(t, cfg, ServerOptions{}, true)
	assert.Nil(t, h.srv.AdminHandler())
	token, _ := h.srv.AdminToken()
	assert.Empty(t, token)
	require.Error(t, h.srv.ServeAdmin(context.Background(), mustListen(t)))

	cfg = testConfig(t.TempDir())
	cfg.Admin.Token = "short-s3cret"
	_, err := NewServer(cfg, ServerOptions{Inline: true})
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "admin.token")
	assert.NotContains(t, err.Error(), "short-s3cret")

	cfg = testConfig(t.TempDir())
	cfg.Admin.Listen = "8081"
	_, err = NewServer(cfg, ServerOptions{Inline: true})
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "admin.listen")

	// A configured token is used as is.
	cfg = testConfig(t.TempDir())
	cfg.Admin.Token = strings.Repeat("t", 24)
	h = newQueuedHarness(t, cfg, ServerOptions{}, true)
	token, generated := h.srv.AdminToken()
	assert.Equal(t, cfg.Admin.Token, token)
	assert.False(t, generated)
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return l
}

// notingSink notes a Jira issue key, as the Jira sink does.
type notingSink struct{ name string }

func (s notingSink) Name() string { return s.name }
func (s notingSink) Deliver(ctx context.Context, ev *event.Event) error {
	sinkpkg.Note(ctx, sinkpkg.NoteJiraIssue, "CS-"+ev.ID)
	return nil
}

// What a sink notes of its delivery reaches its job's record, which the
// console's event page shows.
func TestWorkRecordsSinkNotes(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Webhooks[0].Routes = append(cfg.Webhooks[0].Routes, RouteConfig{Name: "notes", Sinks: []string{"noter"}})
	h := newQueuedHarness(t, cfg, ServerOptions{Sinks: []Sink{notingSink{name: "noter"}}}, false)
	// The harness put fakes in place of every sink: put the noter back.
	hook := h.srv.hooks["staircase"]
	hook.sinks["noter"] = notingSink{name: "noter"}
	for i := range hook.routes {
		for j, sk := range hook.routes[i].sinks {
			if sk.Name() == "noter" {
				hook.routes[i].sinks[j] = notingSink{name: "noter"}
			}
		}
	}
	rec := h.post("evt_note", eventBody(t, event.TypeRenewal, "evt_note", nil))
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	require.Eventually(t, func() bool {
		d, err := h.srv.queue.Event(context.Background(), "staircase", "evt_note")
		if err != nil || d == nil {
			return false
		}
		for _, j := range d.Jobs {
			if j.Receipt[sinkpkg.NoteJiraIssue] == "CS-evt_note" {
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond)
}

// The admin listener serves a bounded number of requests at once, so the
// console's queries cannot take every core from the webhooks.
func TestBoundConcurrency(t *testing.T) {
	var running, peak atomic.Int32
	release := make(chan struct{})
	h := boundConcurrency(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		running.Add(-1)
	}), 2, 200*time.Millisecond)
	var wg sync.WaitGroup
	codes := make(chan int, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			codes <- rec.Code
		}()
	}
	// Two run; the three others wait their 200 ms and are turned away.
	require.Eventually(t, func() bool { return len(codes) == 3 }, 10*time.Second, 10*time.Millisecond)
	close(release)
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	assert.Equal(t, int32(2), peak.Load())
	assert.Equal(t, map[int]int{http.StatusOK: 2, http.StatusServiceUnavailable: 3}, count)
}
