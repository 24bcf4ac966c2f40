package redisstore_test

import (
	"log"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/redisstore"
)

// Several instances of a receiver share the ids in Redis, so an event is
// processed once whichever instance its deliveries reach.
func Example() {
	secret, err := verify.ParseSecret(os.Getenv("STAIRHOOK_SECRET"))
	if err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	v, err := verify.NewVerifier(verify.Options{
		Keys:  []verify.Key{{Label: "current", Secret: secret}},
		Store: redisstore.New(rdb, redisstore.Options{Prefix: "stairhook:staircase:"}),
	})
	if err != nil {
		log.Fatal(err)
	}
	handle := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: v.Middleware(handle), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
