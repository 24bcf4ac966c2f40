package verifytest_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// A handler test: the signed request gets through the middleware, the
// tampered one does not.
func Example() {
	secret, _ := verify.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	v, _ := verify.NewVerifier(verify.Options{
		Keys:    []verify.Key{{Label: "current", Secret: secret}},
		Now:     func() time.Time { return now },
		OnError: func(*http.Request, error) {}, // keep the example's output clean
	})
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := verify.FromContext(r.Context())
		fmt.Println("handled", res.ID)
	}))

	body := []byte(`{"type":"signal"}`)
	for _, req := range []*http.Request{
		verifytest.NewRequest(secret, "evt_1", now, "/webhooks/staircase", body),
		verifytest.TamperedBody(secret, "evt_2", now, "/webhooks/staircase", body),
		verifytest.StaleTimestamp(secret, "evt_3", now, v.Tolerance(), "/webhooks/staircase", body),
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code)
	}
	// Output:
	// handled evt_1
	// 200
	// 401
	// 401
}

// A rotation test: while senders sign with the old and the new secret, the
// receiver's keyring holds both; once the old key has expired, a request
// signed with both still verifies, by the new key, and one signed with the
// old secret alone does not.
func ExampleRotationRequest() {
	oldSecret, _ := verify.ParseSecret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
	newSecret, _ := verify.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	retired := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	now := retired.Add(-time.Hour)
	v, _ := verify.NewVerifier(verify.Options{
		Keys: []verify.Key{
			{Label: "2025-06", Secret: oldSecret, Expires: retired},
			{Label: "2026-11", Secret: newSecret},
		},
		Now: func() time.Time { return now },
		OnError: func(r *http.Request, err error) {
			fmt.Println("rejected:", errors.Is(err, verify.ErrNoMatchingSignature))
		},
	})
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := verify.FromContext(r.Context())
		fmt.Printf("%s verified with key %s\n", res.ID, res.KeyLabel)
	}))
	body := []byte(`{"type":"signal"}`)
	both := []verify.Secret{oldSecret, newSecret}

	h.ServeHTTP(httptest.NewRecorder(), verifytest.RotationRequest(both, "evt_1", now, "/webhooks/staircase", body))
	now = retired.Add(time.Hour) // the old key has expired
	h.ServeHTTP(httptest.NewRecorder(), verifytest.RotationRequest(both, "evt_2", now, "/webhooks/staircase", body))
	h.ServeHTTP(httptest.NewRecorder(), verifytest.NewRequest(oldSecret, "evt_3", now, "/webhooks/staircase", body))
	// Output:
	// evt_1 verified with key 2025-06
	// evt_2 verified with key 2026-11
	// rejected: true
}
