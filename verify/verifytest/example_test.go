package verifytest_test

import (
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
