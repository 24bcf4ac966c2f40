// Command nethttp receives Staircase AI webhooks with the standard library:
// the stairhook middleware verifies, package event decodes, a switch acts.
//
//	STAIRHOOK_SECRET=whsec_… go run ./examples/nethttp
package main

import (
	"cmp"
	"io"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/verify"
)

func main() {
	// During a rotation: verify.FromSecrets(newSecret, oldSecret).
	v, err := verify.FromSecrets(os.Getenv("STAIRHOOK_SECRET"))
	if err != nil {
		log.Fatalf("STAIRHOOK_SECRET: %v", err)
	}
	log.Fatal(newServer(cmp.Or(os.Getenv("ADDR"), "127.0.0.1:8080"), newMux(v)).ListenAndServe())
}

// newServer bounds each phase of a request, so a client that sends its
// body slowly, or never finishes it, is cut off instead of holding memory.
func newServer(addr string, h http.Handler) *http.Server {
	return &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
}

func newMux(v *verify.Verifier) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/staircase", v.Middleware(http.HandlerFunc(handle)))
	return mux
}

func handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body) // the verified bytes, capped by the middleware
	ev, err := event.Decode(body)
	if err != nil {
		http.Error(w, "invalid event", http.StatusBadRequest) // a 400 is never retried
		return
	}
	switch ev.Type { // ev.ID is the same on every redelivery: the middleware answers those
	case event.TypeChurnRisk, event.TypeChurnNotification:
		log.Printf("%s: churn at %s: %s (%s)", ev.ID, ev.Account.Name, ev.Signal.Title, ev.Signal.Severity)
	default:
		log.Printf("%s: %s at %s", ev.ID, ev.Type, ev.Account.Name)
	}
	w.WriteHeader(http.StatusNoContent)
}
