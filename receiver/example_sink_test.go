package receiver_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
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
		return err // transient: the job is retried later
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, ev.Type+" "+ev.Account.Name)
	return nil
}

// ExampleServerOptions_sinks plugs a sink of your own into the receiver:
// give it in ServerOptions.Sinks and name it in a route's sinks. The
// server answers 202 once the event is in its database; a worker then runs
// the sink.
func ExampleServerOptions_sinks() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	dir, err := os.MkdirTemp("", "stairhook-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	env := map[string]string{"STAIRHOOK_SECRET": secret, "DB": filepath.Join(dir, "stairhook.db")}
	cfg, err := receiver.ParseConfig([]byte(`
store: {sqlite: "${DB}"}
webhooks:
  - name: staircase
    secrets: [{secret: "${STAIRHOOK_SECRET}"}]
    routes:
      - when: {types: [churn_risk, renewal]}
        sinks: [audit]
`), func(name string) (string, bool) { v, ok := env[name]; return v, ok }) // os.LookupEnv in a real program
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go srv.Serve(ctx, ln)

	// Post a signed sample event twice, as a sender retrying would: the
	// second is a duplicate, and the sink runs once.
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
		req := verifytest.NewRequest(key, ev.ID, time.Now(), "http://"+ln.Addr().String()+"/webhooks/staircase", body)
		req.RequestURI = ""
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get(verify.DuplicateHeader) == "true")
	}
	for deadline := time.Now().Add(10 * time.Second); audit.count() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println(audit.snapshot())
	// Output:
	// 202 false
	// 200 true
	// [churn_risk Acme Corp]
}

func (s *auditSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

func (s *auditSink) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}
