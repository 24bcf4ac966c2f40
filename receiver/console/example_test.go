package console_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stairhook/stairhook/receiver/console"
	"github.com/stairhook/stairhook/receiver/queue"
)

// The console on an admin listener of its own, with the metrics at
// /metrics: the receiver's database, the admin token and the webhooks'
// names.
func ExampleNew() {
	ctx := context.Background()
	q, err := queue.Open(ctx, queue.Location{SQLitePath: "/var/lib/stairhook/stairhook.db"}, queue.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	webhooks := []console.Webhook{{Name: "staircase", Keys: []string{"current"}, Sinks: []string{"staircase.route1.jira"}}}
	reg := prometheus.NewRegistry()
	if _, err := console.NewMetrics(reg, console.MetricsOptions{Webhooks: webhooks, Queue: q}); err != nil {
		log.Fatal(err)
	}
	c, err := console.New(console.Options{Queue: q, Token: os.Getenv("STAIRHOOK_ADMIN_TOKEN"), Webhooks: webhooks, Registry: reg})
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:8081", c))
}

// The receiver counts each outcome; Prometheus reads the registry.
func ExampleMetrics() {
	reg := prometheus.NewRegistry()
	m, err := console.NewMetrics(reg, console.MetricsOptions{Webhooks: []console.Webhook{{Name: "staircase", Keys: []string{"current"}}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	m.Accepted("staircase")
	m.Refused("staircase", "timestamp_too_new")
	m.Refused("no-such-webhook", "timestamp_too_new")

	fams, _ := reg.Gather()
	for _, f := range fams {
		if f.GetName() != "stairhook_requests_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			if s.GetCounter().GetValue() > 0 {
				l := s.GetLabel() // sorted: outcome, reason, webhook
				fmt.Println(l[2].GetValue(), l[0].GetValue(), l[1].GetValue(), s.GetCounter().GetValue())
			}
		}
	}
	// Output:
	// staircase accepted  1
	// (other) refused timestamp_too_new 1
	// staircase refused timestamp_too_new 1
}

func ExampleRedact() {
	fmt.Println(console.Redact("jira: 401 for https://bot:hunter2@jira.example (Authorization: Basic Ym90Omh1bnRlcjI=)"))
	fmt.Println(console.Redact("no match for v1,K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols= with whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
	// Output:
	// jira: 401 for https://[redacted]@jira.example (Authorization: Basic [redacted])
	// no match for v1,[redacted] with whsec_[redacted]
}
