// Command sender is a minimal sending service: it signs one event and posts
// it with retries. Run it against `stairhook serve`:
//
//	STAIRHOOK_SECRET=whsec_… go run ./examples/sender http://127.0.0.1:8080/webhooks/staircase
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/stairhook/stairhook/sender"
	"github.com/stairhook/stairhook/verify"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: STAIRHOOK_SECRET=whsec_… sender URL")
	}
	secret, err := verify.ParseSecret(os.Getenv("STAIRHOOK_SECRET"))
	if err != nil {
		log.Fatal(err) // never contains the secret
	}
	id := fmt.Sprintf("evt_example_%d", time.Now().UnixNano())
	body := fmt.Appendf(nil, `{"id":%q,"type":"churn_risk","created_at":%q,"test":true,"account":{"id":"acc_1","name":"Acme Corp"},"signal":{"title":"Churn risk detected","severity":"high"}}`, id, time.Now().UTC().Format(time.RFC3339))
	s := sender.New(sender.Options{Schedule: []time.Duration{0, 5 * time.Second, 30 * time.Second}})
	ep := sender.Endpoint{URL: os.Args[1], Secrets: []verify.Secret{secret}}
	// Send retries until the schedule runs out; the deadline bounds the wait.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := s.Send(ctx, ep, "", body) // "": the body's id is signed
	for _, a := range rep.Attempts {
		log.Printf("attempt %d: status %d in %v: %s", a.Number, a.Status, a.Duration.Round(time.Millisecond), a.Body)
	}
	if err != nil {
		log.Fatal(err)
	}
}
