package receiver_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/stairhook/stairhook/receiver"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// auditSink is a sink of your own: it keeps one line per event. A real one
// would post to a chat, a pager or a queue.
type auditSink struct {
	mu    sync.Mutex
	lines []string
}

// Name is what routes list under sinks:, and the sink's key in the record
// of done sinks and in the dead-letter file.
func (s *auditSink) Name() string { return "audit" }

// Deliver may run for several events at once.
func (s *auditSink) Deliver(ctx context.Context, ev *event.Event) error {
	if err := ctx.Err(); err != nil {
		return err // transient: the sender is told 503 and retries
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, ev.Type+" "+ev.Account.Name)
	return nil
}

// ExampleServerOptions_sinks plugs a sink of your own into the receiver:
// give it in ServerOptions.Sinks and name it in a route's sinks.
func ExampleServerOptions_sinks() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	cfg, err := receiver.ParseConfig([]byte(`
webhooks:
  - name: staircase
    secrets: [{secret: "${STAIRCASE_WEBHOOK_SECRET}"}]
    routes:
      - when: {types: [churn_risk, renewal]}
        sinks: [audit]
`), func(name string) (string, bool) {
		if name == "STAIRCASE_WEBHOOK_SECRET" { // os.LookupEnv in a real program
			return secret, true
		}
		return "", false
	})
	if err != nil {
		log.Fatal(err)
	}
	audit := &auditSink{}
	srv, err := receiver.NewServer(cfg, receiver.ServerOptions{
		Sinks:  []receiver.Sink{audit},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	// Post a signed sample event twice, as a sender retrying would: the
	// sink runs once.
	key, err := verify.ParseSecret(secret)
	if err != nil {
		log.Fatal(err)
	}
	body, err := event.Sample(event.TypeChurnRisk)
	if err != nil {
		log.Fatal(err)
	}
	ev, err := event.Decode(body)
	if err != nil {
		log.Fatal(err)
	}
	for range 2 {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, verifytest.NewRequest(key, ev.ID, time.Now(), "/webhooks/staircase", body))
		fmt.Println(rec.Code)
	}
	fmt.Println(audit.lines)
	// Output:
	// 200
	// 200
	// [churn_risk Acme Corp]
}
