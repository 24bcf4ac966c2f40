package sender_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/stairhook/stairhook/sender"
	"github.com/stairhook/stairhook/verify"
)

// A sending service posts each event to every endpoint that is not
// disabled. Send keeps retrying for about 2 h 35 min on the default
// schedule, so the context's deadline says how long this caller can wait.
// This example is compile-only: it would contact the endpoint.
func ExampleSender_Send() {
	secret, err := verify.ParseSecret(os.Getenv("STAIRHOOK_SECRET"))
	if err != nil {
		log.Fatal(err) // the error never contains the secret
	}
	s := sender.New(sender.Options{}) // 15 s per attempt, retries over about 2 h 35 min
	ep := sender.Endpoint{URL: "https://hooks.example.com/webhooks/staircase", Secrets: []verify.Secret{secret}}
	body := []byte(`{"id":"evt_123","type":"churn_risk","account":{"id":"acc_1"}}`)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour) // the whole schedule, with room
	defer cancel()
	rep, err := s.Send(ctx, ep, "", body) // "": the id is the body's, evt_123
	for _, a := range rep.Attempts {
		log.Printf("attempt %d: status %d in %v", a.Number, a.Status, a.Duration)
	}
	if err != nil {
		log.Printf("%s not delivered: %v", rep.ID, err)
	}
}

// The id Send signs when given none is the body's top-level "id".
func ExampleEventID() {
	fmt.Printf("%q\n", sender.EventID([]byte(`{"id":"evt_123","type":"churn_risk"}`)))
	fmt.Printf("%q\n", sender.EventID([]byte(`{"type":"churn_risk"}`)))
	// Output:
	// "evt_123"
	// ""
}

// A disabled endpoint is never contacted.
func ExampleEndpoint_disabled() {
	secret, _ := verify.NewSecret()
	ep := sender.Endpoint{URL: "https://hooks.example.com/webhooks/staircase", Secrets: []verify.Secret{secret}, Disabled: true}
	_, err := sender.New(sender.Options{}).Send(context.Background(), ep, "evt_123", nil)
	fmt.Println(errors.Is(err, sender.ErrDisabled))
	// Output: true
}

// Retries keep the event id and re-sign each attempt. Here a receiver
// running the verify middleware fails once, and the test skips the real
// waits with a Sleep that returns at once.
func ExampleSender_Send_retry() {
	secret, _ := verify.NewSecret()
	v, _ := verify.NewVerifier(verify.Options{Keys: []verify.Key{{Label: "current", Secret: secret}}})
	failures := 1
	srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failures > 0 {
			failures--
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		res, _ := verify.FromContext(r.Context())
		fmt.Fprintf(w, "processed %s with key %s", res.ID, res.KeyLabel)
	})))
	defer srv.Close()

	s := sender.New(sender.Options{Sleep: func(context.Context, time.Duration) error { return nil }})
	ep := sender.Endpoint{URL: srv.URL, Secrets: []verify.Secret{secret}}
	rep, err := s.Send(context.Background(), ep, "evt_123", []byte(`{"id":"evt_123"}`))
	for _, a := range rep.Attempts {
		fmt.Printf("attempt %d: %d %s\n", a.Number, a.Status, a.Body)
	}
	fmt.Println("error:", err)
	// Output:
	// attempt 1: 503 try again
	//
	// attempt 2: 200 processed evt_123 with key current
	// error: <nil>
}
