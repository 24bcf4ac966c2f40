package verifytest_test

import (
	"io"
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

func TestHelpersAgainstVerifier(t *testing.T) {
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	now := time.Unix(1_764_115_200, 0)
	const tolerance = 2 * time.Minute
	v, err := verify.NewVerifier(verify.Options{
		Keys:      []verify.Key{{Label: "k", Secret: secret}},
		Tolerance: tolerance,
		Now:       func() time.Time { return now },
	})
	require.NoError(t, err)
	body := []byte(`{"type":"signal","id":"evt_1"}`)

	tests := []struct {
		name string
		req  *http.Request
		want error // nil: verifies
	}{
		{"signed", verifytest.NewRequest(secret, "evt_1", now, "/hook", body), nil},
		{"signed empty body", verifytest.NewRequest(secret, "evt_1", now, "/hook", nil), nil},
		{"signed at the tolerance bound", verifytest.NewRequest(secret, "evt_1", now.Add(-tolerance), "/hook", body), nil},
		{"tampered body", verifytest.TamperedBody(secret, "evt_1", now, "/hook", body), verify.ErrNoMatchingSignature},
		{"tampered empty body", verifytest.TamperedBody(secret, "evt_1", now, "/hook", nil), verify.ErrNoMatchingSignature},
		{"stale timestamp", verifytest.StaleTimestamp(secret, "evt_1", now, tolerance, "/hook", body), verify.ErrTimestampTooOld},
		{"future timestamp", verifytest.FutureTimestamp(secret, "evt_1", now, tolerance, "/hook", body), verify.ErrTimestampTooNew},
		{"wrong secret", verifytest.WrongSecret("evt_1", now, "/hook", body), verify.ErrNoMatchingSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, http.MethodPost, tc.req.Method)
			assert.Equal(t, "/hook", tc.req.URL.Path)
			got, err := io.ReadAll(tc.req.Body)
			require.NoError(t, err)
			assert.Equal(t, int64(len(got)), tc.req.ContentLength)
			res, err := v.Verify(tc.req.Header, got)
			if tc.want == nil {
				require.NoError(t, err)
				assert.Equal(t, "evt_1", res.ID)
				assert.Equal(t, "k", res.KeyLabel)
				return
			}
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

func TestSignedHeadersMatchSigner(t *testing.T) {
	secret, err := verify.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	require.NoError(t, err)
	h := verifytest.SignedHeaders(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	assert.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", h.Get("X-Staircase-Signature"))
	assert.Equal(t, "1614265330", h.Get("X-Staircase-Timestamp"))
	assert.Equal(t, "msg_p5jXN8AQM9LWM0D4loKWxJek", h.Get("X-Staircase-Id"))
}

func TestInvalidInputPanics(t *testing.T) {
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	now := time.Unix(1_764_115_200, 0)
	assert.Panics(t, func() { verifytest.SignedHeaders(verify.Secret{}, "evt_1", now, nil) }, "zero secret")
	assert.Panics(t, func() { verifytest.NewRequest(secret, "", now, "/", nil) }, "empty id")
	assert.Panics(t, func() { verifytest.NewRequest(secret, "has space", now, "/", nil) }, "id with a space")
}

func TestRequestServesThroughRecorder(t *testing.T) {
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	v, err := verify.NewVerifier(verify.Options{Keys: []verify.Key{{Secret: secret}}})
	require.NoError(t, err)
	var got []byte
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, verifytest.NewRequest(secret, "evt_2", time.Now(), "http://example.test/hook", []byte("hello")))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "hello", string(got))
}

func TestRotationRequest(t *testing.T) {
	a, err := verify.NewSecret()
	require.NoError(t, err)
	b, err := verify.NewSecret()
	require.NoError(t, err)
	now := time.Unix(1_764_115_200, 0)
	body := []byte(`{"type":"signal"}`)
	req := verifytest.RotationRequest([]verify.Secret{a, b}, "evt_1", now, "/hook", body)
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Len(t, strings.Fields(req.Header.Get("X-Staircase-Signature")), 2, "one v1 entry per secret")
	got, err := io.ReadAll(req.Body)
	require.NoError(t, err)
	assert.Equal(t, body, got)

	// Each secret alone verifies it: the entries are the two signatures.
	for label, s := range map[string]verify.Secret{"a": a, "b": b} {
		v, err := verify.NewVerifier(verify.Options{Keys: []verify.Key{{Label: label, Secret: s}}, Now: func() time.Time { return now }})
		require.NoError(t, err)
		res, err := v.Verify(req.Header, body)
		require.NoError(t, err, "key %s", label)
		assert.Equal(t, label, res.KeyLabel)
	}
	// Its first entry is the first secret's, as the Signer writes them.
	one := verifytest.NewRequest(a, "evt_1", now, "/hook", body)
	assert.Equal(t, one.Header.Get("X-Staircase-Signature"), strings.Fields(req.Header.Get("X-Staircase-Signature"))[0])

	assert.Panics(t, func() { verifytest.RotationRequest(nil, "evt_1", now, "/hook", body) }, "no secret")
}
