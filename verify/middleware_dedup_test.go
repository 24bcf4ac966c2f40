package verify_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// captureDefaultLog sends slog.Default to a JSON buffer for the test.
func captureDefaultLog(t *testing.T) *bytes.Buffer {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return &buf
}

func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec))
		lines = append(lines, rec)
	}
	return lines
}

// Without OnDuplicate, a duplicate is no longer silent: one line at Info
// names its id and key. An id in flight is logged once, by OnError's
// default, not a second time.
func TestMiddlewareDefaultDuplicateLogLine(t *testing.T) {
	buf := captureDefaultLog(t)
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	store := verify.NewMemoryStore(verify.MemoryStoreOptions{Now: func() time.Time { return mwNow }})
	v, err := verify.NewVerifier(verify.Options{
		Keys:  []verify.Key{{Label: "current", Secret: secret}},
		Now:   func() time.Time { return mwNow },
		Store: store,
	})
	require.NoError(t, err)
	h := v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	req := func(id string) *http.Request {
		r := verifytest.NewRequest(secret, id, mwNow, "/webhooks/staircase", []byte(`{}`))
		r.Header.Set("X-Request-Id", "req-7")
		return r
	}
	h.ServeHTTP(httptest.NewRecorder(), req("evt_twice"))
	assert.Empty(t, buf.String(), "a first delivery logs nothing")
	dup := req("evt_twice")
	sig := dup.Header.Get("X-Staircase-Signature")
	h.ServeHTTP(httptest.NewRecorder(), dup)
	lines := logLines(t, buf)
	require.Len(t, lines, 1, "one line for the duplicate: %s", buf)
	assert.Equal(t, "INFO", lines[0]["level"])
	assert.Contains(t, lines[0]["msg"], "duplicate")
	assert.Equal(t, "evt_twice", lines[0]["id"])
	assert.Equal(t, "current", lines[0]["key"])
	assert.Equal(t, "req-7", lines[0]["request_id"])
	assert.Equal(t, dup.RemoteAddr, lines[0]["remote"])
	assert.NotContains(t, buf.String(), strings.TrimPrefix(sig, "v1,"))

	buf.Reset()
	_, _, err = store.Reserve(t.Context(), "evt_busy", time.Minute)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req("evt_busy"))
	assert.Equal(t, http.StatusConflict, rec.Code)
	lines = logLines(t, buf)
	require.Len(t, lines, 1, "one line for an id in flight: %s", buf)
	assert.Equal(t, "WARN", lines[0]["level"], "OnError's line")
}

// DisableDeduplication lets every verified request through, the same id
// again included, and touches no store; verification is unchanged.
func TestMiddlewareDisableDeduplication(t *testing.T) {
	f := newFixture(t, func(o *verify.Options) {
		o.Store = nil
		o.DisableDeduplication = true
	})
	var ids []string
	h := f.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, ok := verify.FromContext(r.Context())
		require.True(t, ok)
		ids = append(ids, res.ID)
		w.WriteHeader(http.StatusAccepted)
	}))
	body := []byte(`{"n":1}`)
	for i := range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, verifytest.NewRequest(f.secret, "evt_again", mwNow.Add(time.Duration(i)*time.Second), "/", body))
		assert.Equal(t, http.StatusAccepted, rec.Code)
		assert.Empty(t, rec.Header().Get(verify.DuplicateHeader))
	}
	assert.Equal(t, []string{"evt_again", "evt_again", "evt_again"}, ids, "the application sees every copy, with its id")
	assert.Empty(t, f.duplicates(), "OnDuplicate is never called")
	reserves, _, _ := f.store.calls()
	assert.Zero(t, reserves, "no store is asked")

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, verifytest.TamperedBody(f.secret, "evt_forged", mwNow, "/", body))
	assert.Equal(t, http.StatusUnauthorized, rec.Code, "verification still applies")
}

// Options that configure the deduplication contradict DisableDeduplication.
func TestMiddlewareDisableDeduplicationConflicts(t *testing.T) {
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	keys := []verify.Key{{Secret: secret}}
	for name, o := range map[string]verify.Options{
		"with a Store":     {Keys: keys, DisableDeduplication: true, Store: verify.NewMemoryStore(verify.MemoryStoreOptions{})},
		"with a Retention": {Keys: keys, DisableDeduplication: true, Retention: time.Hour},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := verify.NewVerifier(o)
			assert.ErrorIs(t, err, verify.ErrInvalidOptions)
			assert.Contains(t, err.Error(), "DisableDeduplication")
		})
	}
}
