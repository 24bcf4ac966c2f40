package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

func TestNewMux(t *testing.T) {
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	v, err := verify.NewVerifier(verify.Options{Keys: []verify.Key{{Secret: secret}}, OnError: func(*http.Request, error) {}})
	require.NoError(t, err)
	h := newMux(v)
	now := time.Now()
	body := []byte(`{"type":"signal"}`)
	get := httptest.NewRequest(http.MethodGet, "/webhooks/staircase", nil)
	tests := []struct {
		name   string
		req    *http.Request
		status int
	}{
		{"signed", verifytest.NewRequest(secret, "evt_1", now, "/webhooks/staircase", body), http.StatusNoContent},
		{"duplicate", verifytest.NewRequest(secret, "evt_1", now, "/webhooks/staircase", body), http.StatusOK},
		{"tampered", verifytest.TamperedBody(secret, "evt_2", now, "/webhooks/staircase", body), http.StatusUnauthorized},
		{"stale", verifytest.StaleTimestamp(secret, "evt_3", now, v.Tolerance(), "/webhooks/staircase", body), http.StatusUnauthorized},
		{"GET", get, http.StatusMethodNotAllowed},
		{"other path", verifytest.NewRequest(secret, "evt_4", now, "/webhooks/other", body), http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, tc.req)
			assert.Equal(t, tc.status, rec.Code)
		})
	}
}
