package sender_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/stairhook/stairhook/sender"
	"github.com/stairhook/stairhook/verify"
)

// A sending service posts each event to every enabled endpoint. This
// example is compile-only: it would contact the endpoint.
func ExampleSender_Send() {
	secret, err := verify.ParseSecret(os.Getenv("STAIRCASE_WEBHOOK_SECRET"))
	if err != nil {
		log.Fatal(err) // the error never contains the secret
	}
	s := sender.New(sender.Options{}) // 15 s per attempt, retries over about 2.5 h
	ep := sender.Endpoint{URL: "https://hooks.example.com/webhooks/staircase", Secrets: []verify.Secret{secret}, Enabled: true}
	body := []byte(`{"id":"evt_123","type":"churn_risk","account":{"id":"acc_1"}}`)
	rep, err := s.Send(context.Background(), ep, "evt_123", body)
	for _, a := range rep.Attempts {
		log.Printf("attempt %d: status %d in %v", a.Number, a.Status, a.Duration)
	}
	if err != nil {
		log.Printf("not delivered: %v", err)
	}
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
	ep := sender.Endpoint{URL: srv.URL, Secrets: []verify.Secret{secret}, Enabled: true}
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
