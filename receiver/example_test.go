package receiver_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/stairhook/stairhook/receiver"
)

func ExampleParseConfig() {
	data := []byte(`
webhooks:
  - name: staircase
    secrets: [{label: current, secret: "${STAIRHOOK_SECRET}"}]
    routes:
      - when: {types: [churn_risk]}
        jira: {project: CS}
      - email: {to: [not-an-address]}
`)
	env := map[string]string{"STAIRHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	_, err := receiver.ParseConfig(data, lookup)
	fmt.Println(errors.Is(err, receiver.ErrInvalidConfig))

	_, err = receiver.ParseConfig(data, func(string) (string, bool) { return "", false })
	fmt.Println(err)
	// Output:
	// true
	// line 4: environment variable STAIRHOOK_SECRET is not set (referenced as ${STAIRHOOK_SECRET})
	// webhooks[0].secrets[0].secret: not a whsec_ secret (invalid secret: empty)
	// webhooks[0].routes[1].email.to[0]: not an email address: mail: missing '@' or angle-addr
}

// ExampleNewServer runs the receiver as `stairhook serve --config` does,
// until SIGINT or SIGTERM, letting in-flight deliveries finish.
func ExampleNewServer() {
	cfg, err := receiver.LoadConfig("config.yaml")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := receiver.NewServer(cfg, receiver.ServerOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.ListenAndServe(ctx); err != nil {
		log.Fatal(err)
	}
}
