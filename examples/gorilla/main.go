// Command gorilla receives Staircase AI webhooks on a gorilla/mux router, verified by
// the stairhook middleware: STAIRCASE_WEBHOOK_SECRET=whsec_… go run ./examples/gorilla
package main

import (
	"cmp"
	"io"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/gorilla/mux"
	"github.com/stairhook/stairhook/verify"
)

func main() {
	secret, err := verify.ParseSecret(os.Getenv("STAIRCASE_WEBHOOK_SECRET"))
	if err != nil {
		log.Fatalf("STAIRCASE_WEBHOOK_SECRET: %v", err)
	}
	v, err := verify.NewVerifier(verify.Options{Keys: []verify.Key{{Label: "current", Secret: secret}}})
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal((&http.Server{Addr: cmp.Or(os.Getenv("ADDR"), "127.0.0.1:8080"), Handler: newRouter(v), ReadHeaderTimeout: 10 * time.Second}).ListenAndServe())
}

func newRouter(v *verify.Verifier) *mux.Router {
	r := mux.NewRouter()
	r.Use(v.Middleware) // runs for matched routes only
	r.HandleFunc("/webhooks/staircase", func(w http.ResponseWriter, r *http.Request) {
		res, _ := verify.FromContext(r.Context()) // res.ID is the idempotency key
		body, _ := io.ReadAll(r.Body)             // the verified bytes, capped
		log.Printf("event %s: %d bytes, key %q", res.ID, len(body), res.KeyLabel)
		w.WriteHeader(http.StatusNoContent)
	}).Methods(http.MethodPost)
	return r
}
