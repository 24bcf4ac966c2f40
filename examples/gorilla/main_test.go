package main

import (
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

func newTestVerifier(t *testing.T) (verify.Secret, *verify.Verifier) {
	t.Helper()
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	v, err := verify.NewVerifier(verify.Options{
		Keys:    []verify.Key{{Label: "current", Secret: secret}},
		OnError: func(*http.Request, error) {},
	})
	require.NoError(t, err)
	return secret, v
}

// A router with route variables and r.Use: the variables and the Result
// both reach the handler, and the body is the verified one.
func TestRouterUseWithRouteVariables(t *testing.T) {
	secret, v := newTestVerifier(t)
	type seen struct {
		name, tenant, id, body string
	}
	var got []seen
	r := mux.NewRouter()
	r.Use(v.Middleware)
	r.HandleFunc("/tenants/{tenant}/webhooks/{name}", func(w http.ResponseWriter, r *http.Request) {
		res, ok := verify.FromContext(r.Context())
		require.True(t, ok)
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		vars := mux.Vars(r)
		got = append(got, seen{vars["name"], vars["tenant"], res.ID, string(b)})
		w.WriteHeader(http.StatusAccepted)
	}).Methods(http.MethodPost)

	now := time.Now()
	body := []byte(`{"type":"signal"}`)
	tests := []struct {
		name   string
		req    *http.Request
		status int
	}{
		{"signed", verifytest.NewRequest(secret, "evt_1", now, "/tenants/acme/webhooks/staircase", body), http.StatusAccepted},
		{"duplicate", verifytest.NewRequest(secret, "evt_1", now, "/tenants/acme/webhooks/staircase", body), http.StatusOK},
		{"tampered", verifytest.TamperedBody(secret, "evt_2", now, "/tenants/acme/webhooks/staircase", body), http.StatusUnauthorized},
		{"wrong secret", verifytest.WrongSecret("evt_3", now, "/tenants/acme/webhooks/staircase", body), http.StatusUnauthorized},
		{"stale", verifytest.StaleTimestamp(secret, "evt_4", now, v.Tolerance(), "/tenants/acme/webhooks/staircase", body), http.StatusUnauthorized},
		{"unknown route is mux's 404, before the middleware", verifytest.NewRequest(secret, "evt_5", now, "/nowhere", body), http.StatusNotFound},
		{"another tenant", verifytest.NewRequest(secret, "evt_6", now, "/tenants/globex/webhooks/staircase", body), http.StatusAccepted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, tc.req)
			assert.Equal(t, tc.status, rec.Code)
		})
	}
	assert.Equal(t, []seen{
		{"staircase", "acme", "evt_1", string(body)},
		{"staircase", "globex", "evt_6", string(body)},
	}, got)

	// evt_5 never reached the middleware, so its id was not reserved.
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, verifytest.NewRequest(secret, "evt_5", now, "/tenants/acme/webhooks/staircase", body))
	assert.Equal(t, http.StatusAccepted, rec.Code)
}

// The middleware on a single route: the others stay open.
func TestMiddlewareOnOneRoute(t *testing.T) {
	secret, v := newTestVerifier(t)
	var hooks atomic.Int32
	r := mux.NewRouter()
	r.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }).Methods(http.MethodGet)
	r.Handle("/webhooks/{name}", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "staircase", mux.Vars(r)["name"])
		hooks.Add(1)
	}))).Methods(http.MethodPost, http.MethodGet)

	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "ok", rec.Body.String())

	rec = httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/webhooks/staircase", nil))
	assert.Equal(t, http.StatusBadRequest, rec.Code, "no signature")

	rec = httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/webhooks/staircase", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code, "the middleware's own method check")
	assert.Equal(t, "POST", rec.Header().Get("Allow"))

	rec = httptest.NewRecorder()
	r.ServeHTTP(rec, verifytest.NewRequest(secret, "evt_1", time.Now(), "/webhooks/staircase", []byte("{}")))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, int32(1), hooks.Load())
}

// The example's own router, over a real server.
func TestNewRouter(t *testing.T) {
	secret, v := newTestVerifier(t)
	srv := httptest.NewServer(newRouter(v))
	defer srv.Close()
	body, err := event.Sample(event.TypeRenewal)
	require.NoError(t, err)
	id := "evt_01JD3QX8M2A1B4C6D8E0F2G4H4" // the sample's
	var logged bytes.Buffer
	log.SetOutput(&logged)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	post := func(h http.Header, path string) int {
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
		require.NoError(t, err)
		for k, vv := range h {
			req.Header[k] = vv
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusNoContent, post(verifytest.SignedHeaders(secret, id, time.Now(), body), "/webhooks/staircase"))
	assert.Equal(t, http.StatusOK, post(verifytest.SignedHeaders(secret, id, time.Now(), body), "/webhooks/staircase"), "duplicate")
	assert.Equal(t, 1, strings.Count(logged.String(), id+": Renewal due in 60 days for Acme Corp"), "the decoded event reached the switch once: %s", logged.String())
	notEvent := []byte(`{"type":"signal"}`)
	req := verifytest.SignedHeaders(secret, "evt_9", time.Now(), notEvent)
	body = notEvent
	assert.Equal(t, http.StatusBadRequest, post(req, "/webhooks/staircase"), "verified, but not an event")
	assert.Equal(t, http.StatusUnauthorized, post(verifytest.SignedHeaders(secret, "evt_2", time.Now(), []byte("other")), "/webhooks/staircase"))
	assert.Equal(t, http.StatusBadRequest, post(nil, "/webhooks/staircase"))
	assert.Equal(t, http.StatusNotFound, post(nil, "/webhooks/other"))
}
