package verify_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// A receiver: the handler behind the middleware sees only verified
// requests, each event once, with the verified body and the Result.
func ExampleVerifier_Middleware() {
	secret, err := verify.ParseSecret(os.Getenv("STAIRHOOK_SECRET"))
	if err != nil {
		log.Fatal(err)
	}
	v, err := verify.NewVerifier(verify.Options{
		Keys: []verify.Key{{Label: "current", Secret: secret}},
		// Behind a load balancer, share the ids: Store: redisstore.New(rdb, redisstore.Options{}).
	})
	if err != nil {
		log.Fatal(err)
	}
	handle := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := verify.FromContext(r.Context())
		body, _ := io.ReadAll(r.Body)
		log.Printf("event %s, %d bytes", res.ID, len(body))
		// A 2xx marks the id done; anything else lets the sender retry.
		w.WriteHeader(http.StatusNoContent)
	})
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/staircase", v.Middleware(handle))
	srv := &http.Server{
		Addr:    "127.0.0.1:8080",
		Handler: mux,
		// A client that stalls holds its connection (and a body buffer,
		// once its headers pass) only this long.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	log.Fatal(srv.ListenAndServe())
}

// What a sender sees: the first delivery is processed, a retry of the same
// event is answered as a duplicate without reaching the handler, and a
// forged request gets a stable error code.
func ExampleVerifier_Middleware_answers() {
	secret, _ := verify.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	v, _ := verify.NewVerifier(verify.Options{
		Keys: []verify.Key{{Label: "current", Secret: secret}},
		Now:  func() time.Time { return now },
		OnError: func(r *http.Request, err error) {
			fmt.Println("rejected, wrong secret or body:", errors.Is(err, verify.ErrNoMatchingSignature))
		},
	})
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := verify.FromContext(r.Context())
		body, _ := io.ReadAll(r.Body)
		fmt.Printf("handled %s with key %q: %s\n", res.ID, res.KeyLabel, body)
	}))

	body := []byte(`{"type":"signal"}`)
	for _, req := range []*http.Request{
		verifytest.NewRequest(secret, "evt_1", now, "/webhooks/staircase", body),
		verifytest.NewRequest(secret, "evt_1", now.Add(5*time.Second), "/webhooks/staircase", body), // the sender's retry
		verifytest.WrongSecret("evt_2", now, "/webhooks/staircase", body),
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var failure struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &failure)
		fmt.Println(rec.Code, "duplicate="+rec.Header().Get(verify.DuplicateHeader), "code="+failure.Error.Code)
	}
	// Output:
	// handled evt_1 with key "current": {"type":"signal"}
	// 200 duplicate= code=
	// 200 duplicate=true code=
	// rejected, wrong secret or body: true
	// 401 duplicate= code=no_matching_signature
}

// Duplicates are answered without reaching the handler; OnDuplicate sees
// each one, here to count them, as a metric would.
func ExampleOptions_onDuplicate() {
	secret, _ := verify.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	v, _ := verify.NewVerifier(verify.Options{
		Keys: []verify.Key{{Label: "current", Secret: secret}},
		Now:  func() time.Time { return now },
		OnDuplicate: func(r *http.Request, res verify.Result, state verify.State) {
			// state is StateDone (answered 200, X-Stairhook-Duplicate: true)
			// or StateInFlight (answered 409, OnError is called too).
			fmt.Printf("duplicate %s (%v), signed with key %q\n", res.ID, state, res.KeyLabel)
		},
	})
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := verify.FromContext(r.Context())
		fmt.Println("handled", res.ID)
	}))
	body := []byte(`{"type":"signal"}`)
	for i := range 3 {
		req := verifytest.NewRequest(secret, "evt_1", now.Add(time.Duration(i)*time.Second), "/webhooks/staircase", body)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	// Output:
	// handled evt_1
	// duplicate evt_1 (done), signed with key "current"
	// duplicate evt_1 (done), signed with key "current"
}

// An application that keeps its own idempotency, keyed by the signed id,
// turns the Middleware's deduplication off: every verified copy of an
// event reaches the handler, which must then tell repeats apart itself.
func ExampleOptions_disableDeduplication() {
	secret, _ := verify.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	v, _ := verify.NewVerifier(verify.Options{
		Keys:                 []verify.Key{{Label: "current", Secret: secret}},
		Now:                  func() time.Time { return now },
		DisableDeduplication: true,
	})
	seen := map[string]bool{} // in a real application: a unique key in its database
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := verify.FromContext(r.Context())
		if seen[res.ID] {
			fmt.Println("already have", res.ID)
			return
		}
		seen[res.ID] = true
		fmt.Println("stored", res.ID)
	}))
	body := []byte(`{"type":"signal"}`)
	for i := range 2 {
		req := verifytest.NewRequest(secret, "evt_1", now.Add(time.Duration(i)*time.Second), "/webhooks/staircase", body)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	// Output:
	// stored evt_1
	// already have evt_1
}
