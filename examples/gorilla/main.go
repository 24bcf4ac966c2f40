// Command gorilla receives Staircase AI webhooks on a gorilla/mux router:
// the stairhook middleware verifies, package event decodes, a switch acts.
//
//	STAIRHOOK_SECRET=whsec_… go run ./examples/gorilla
package main

import (
	"cmp"
	"io"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/gorilla/mux"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/verify"
)

func main() {
	// During a rotation: verify.FromSecrets(newSecret, oldSecret).
	v, err := verify.FromSecrets(os.Getenv("STAIRHOOK_SECRET"))
	if err != nil {
		log.Fatalf("STAIRHOOK_SECRET: %v", err)
	}
	srv := &http.Server{Addr: cmp.Or(os.Getenv("ADDR"), "127.0.0.1:8080"), Handler: newRouter(v),
		// Every phase bounded: a client that stalls its body is cut off.
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	log.Fatal(srv.ListenAndServe())
}

func newRouter(v *verify.Verifier) *mux.Router {
	r := mux.NewRouter()
	r.Use(v.Middleware) // runs for matched routes only
	r.HandleFunc("/webhooks/staircase", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // the verified bytes, capped by the middleware
		ev, err := event.Decode(body)
		if err != nil {
			http.Error(w, "invalid event", http.StatusBadRequest) // a 400 is never retried
			return
		}
		switch ev.Type {
		case event.TypeRenewal, event.TypeCommercialDiscussion:
			log.Printf("%s: %s for %s", ev.ID, ev.Signal.Title, ev.Account.Name)
		default:
			log.Printf("%s: %s at %s", ev.ID, ev.Type, ev.Account.Name)
		}
		w.WriteHeader(http.StatusNoContent)
	}).Methods(http.MethodPost)
	return r
}
