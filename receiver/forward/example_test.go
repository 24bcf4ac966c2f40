package forward_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/forward"
	"github.com/stairhook/stairhook/verify"
)

// Example forwards one event to a destination that checks it with package
// verify, as another stairhook, or any service built on this module, does.
// The destination holds its own secret, which the forwarding route names.
func Example() {
	const secret = "whsec_ZtN8DOeQ+whydP/Kid9Ly13y1m3NCppKBdlxdc5G7os=" // os.Getenv("FORWARD_SECRET") in a real program

	// The destination.
	key, err := verify.ParseSecret(secret)
	if err != nil {
		log.Fatal(err)
	}
	v, err := verify.NewVerifier(verify.Options{Keys: []verify.Key{{Label: "current", Secret: key}}})
	if err != nil {
		log.Fatal(err)
	}
	dest := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := verify.FromContext(r.Context())
		body, _ := io.ReadAll(r.Body)
		fmt.Printf("verified %s with key %s: %s\n", res.ID, res.KeyLabel, body)
	})))
	defer dest.Close()

	// The forwarding sink of one route, signing in the Standard Webhooks
	// headers. Its Deliver is what the receiver's queue calls.
	s, err := forward.New("staircase.automation.forward", forward.Route{
		URL:     dest.URL + "/webhooks/staircase",
		Secret:  secret,
		Headers: forward.HeadersStandard,
	}, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	ev, err := event.Decode([]byte(`{"id":"evt_1", "type":"churn_risk", "account":{"id":"acc_1"}}`))
	if err != nil {
		log.Fatal(err)
	}
	if err := s.Deliver(context.Background(), ev); err != nil {
		log.Fatal(err)
	}
	// Output:
	// verified evt_1 with key current: {"id":"evt_1", "type":"churn_risk", "account":{"id":"acc_1"}}
}

// ExampleRoute_Check shows the problems of a route as the receiver reports
// them at start-up, each under its path, without quoting the URL's
// password, the secret or a header's value.
func ExampleRoute_Check() {
	r := forward.Route{
		URL:          "http://user:password@hooks.example.com/in",
		Secret:       "whsec_not-a-secret",
		ExtraHeaders: map[string]string{"Content-Type": "text/plain", "X-Tenant": "acme"},
	}
	for _, err := range r.Check("webhooks[0].routes[0].forward") {
		fmt.Println(err)
	}
	// Output:
	// webhooks[0].routes[0].forward.url: must be https (http only for a loopback destination: the signed event and any credentials travel in every request)
	// webhooks[0].routes[0].forward.secret: must be "whsec_" and canonical padded standard base64 of at least 16 bytes (the value is not shown)
	// webhooks[0].routes[0].forward.extra_headers.Content-Type: is set by the sink (application/json); it cannot be set here
}
