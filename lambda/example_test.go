package lambda_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/stairhook/stairhook/lambda"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/redisstore"
)

// A function behind a Function URL, API Gateway or an ALB that accepts only
// signed webhook requests. The Redis store makes replay protection hold
// across instances: the default memory store protects one warm instance
// only.
func ExampleStart() {
	secret, err := verify.ParseSecret(os.Getenv("STAIRHOOK_SECRET"))
	if err != nil {
		log.Fatal(err)
	}
	opts, err := redis.ParseURL(os.Getenv("REDIS_URL"))
	if err != nil {
		log.Fatal(err)
	}
	v, err := verify.NewVerifier(verify.Options{
		Keys:  []verify.Key{{Label: "current", Secret: secret}},
		Store: redisstore.New(redis.NewClient(opts), redisstore.Options{}),
	})
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := verify.FromContext(r.Context())
		log.Printf("event %s verified with key %s", res.ID, res.KeyLabel)
		w.WriteHeader(http.StatusNoContent)
	})))
}

// Wrap turns a handler into the function that aws-lambda-go calls; here it
// is invoked directly with a Function URL event.
func ExampleWrap() {
	h := lambda.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s %s from %s: %s", r.Method, r.URL.Path, r.RemoteAddr, body)
	}))
	event := `{
		"version": "2.0",
		"rawPath": "/webhooks/staircase",
		"headers": {"content-type": "application/json"},
		"requestContext": {
			"domainName": "abc.lambda-url.us-east-1.on.aws",
			"http": {"method": "POST", "sourceIp": "192.0.2.1"}
		},
		"body": "eyJpZCI6ImV2dF8xIn0=",
		"isBase64Encoded": true
	}`
	out, err := h.Invoke(context.Background(), []byte(event))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(out))
	// Output:
	// {"statusCode":200,"headers":{"Content-Type":"text/plain; charset=utf-8"},"body":"POST /webhooks/staircase from 192.0.2.1:0: {\"id\":\"evt_1\"}","isBase64Encoded":false,"cookies":[]}
}
