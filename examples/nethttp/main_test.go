package main

import (
	"bytes"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

func TestNewMux(t *testing.T) {
	var logged bytes.Buffer
	log.SetOutput(&logged)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })

	secret, err := verify.NewSecret()
	require.NoError(t, err)
	v, err := verify.NewVerifier(verify.Options{Keys: []verify.Key{{Secret: secret}}, OnError: func(*http.Request, error) {}})
	require.NoError(t, err)
	h := newMux(v)
	now := time.Now()
	body, err := event.Sample(event.TypeChurnRisk)
	require.NoError(t, err)
	const id = "evt_01JD3QX8M2A1B4C6D8E0F2G4H6" // the sample's
	get := httptest.NewRequest(http.MethodGet, "/webhooks/staircase", nil)
	tests := []struct {
		name   string
		req    *http.Request
		status int
	}{
		{"signed", verifytest.NewRequest(secret, id, now, "/webhooks/staircase", body), http.StatusNoContent},
		{"duplicate", verifytest.NewRequest(secret, id, now, "/webhooks/staircase", body), http.StatusOK},
		{"verified but not an event", verifytest.NewRequest(secret, "evt_2", now, "/webhooks/staircase", []byte(`{"type":"signal"}`)), http.StatusBadRequest},
		{"tampered", verifytest.TamperedBody(secret, "evt_3", now, "/webhooks/staircase", body), http.StatusUnauthorized},
		{"stale", verifytest.StaleTimestamp(secret, "evt_4", now, v.Tolerance(), "/webhooks/staircase", body), http.StatusUnauthorized},
		{"GET", get, http.StatusMethodNotAllowed},
		{"other path", verifytest.NewRequest(secret, "evt_5", now, "/webhooks/other", body), http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, tc.req)
			assert.Equal(t, tc.status, rec.Code)
		})
	}
	// The decoded event reached the switch, once.
	assert.Equal(t, 1, bytes.Count(logged.Bytes(), []byte(id+": churn at Acme Corp")), logged.String())
}

// Every phase of a request is bounded: without ReadTimeout a client that
// stalls its body holds the connection and its buffer for as long as it
// likes (internal/e2e's TestSlowBodies measures it).
func TestNewServerTimeouts(t *testing.T) {
	srv := newServer("127.0.0.1:0", http.NotFoundHandler())
	assert.Positive(t, srv.ReadHeaderTimeout)
	assert.Positive(t, srv.ReadTimeout)
	assert.Positive(t, srv.WriteTimeout)
	assert.Positive(t, srv.IdleTimeout)
}
