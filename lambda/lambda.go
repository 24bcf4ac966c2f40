// Package lambda runs an [http.Handler], such as a verify middleware chain
// or the receiver server, as an AWS Lambda function behind any of the HTTP
// triggers: API Gateway REST APIs (payload format 1.0), HTTP APIs (payload
// format 2.0), Lambda Function URLs and Application Load Balancer target
// groups, with or without multi-value headers.
//
// Most functions need one line: lambda.Start(handler). [Wrap] returns the
// same adapter as a value, for tests and for aws-lambda-go's own entry
// points (lambda.NewHandler, lambda.StartWithOptions).
//
// The adapter tells the trigger from the event's JSON itself, so one
// function can sit behind several triggers at once, and answers in the
// matching response shape. An event of any other shape (an SQS message, a
// scheduled event, a test payload) fails the invocation with
// [ErrUnknownEvent]: it is a deployment mistake, not an HTTP request, so it
// surfaces as a Lambda error in the function's metrics rather than as an
// HTTP status nobody sees.
//
// # Security
//
// Webhook signatures are computed over the exact bytes the sender sent. The
// adapter hands the handler those bytes: a body that the trigger marked
// isBase64Encoded is decoded first, and a string body is passed through
// unchanged, never re-serialized. Header names are matched
// case-insensitively (HTTP APIs and Function URLs lower-case them).
//
// A sender may send several x-staircase-signature (or webhook-signature)
// lines, whose entries are read together. HTTP APIs and Function URLs join
// repeated header lines with commas into one value; in the signature
// headers, and only there, the adapter turns each comma that ends one entry
// and starts the next (a comma followed by a version token such as v1, v1a
// or v2 and its comma) back into a space, so the lines verify as they do
// over HTTP. Every other header that such a trigger joined stays one
// value, commas included. REST APIs and ALB target groups with multi-value
// headers pass every line as it was. An ALB target group without multi-value
// headers passes only one line of a repeated header and drops the others,
// so nothing can recover them: a sender rotating secrets behind such an ALB
// must put all its entries on one line, or the target group must have
// multi-value headers turned on.
//
// Replay protection needs a store that every instance shares. Each
// invocation may run on a fresh execution environment, and AWS runs several
// at once under load, so verify's default in-memory store only protects one
// warm instance: a replayed request that lands on another instance, or after
// a cold start, is not recognised. For real replay protection and
// idempotency configure a Redis store (verify/redisstore), for example in the
// receiver configuration:
//
//	store:
//	  redis: redis://my-cache.abc123.use1.cache.amazonaws.com:6379/0
//
// or in code, verify.Options{Store: redisstore.New(client, redisstore.Options{})}.
//
// Bounds: a body larger than [MaxBodyBytes] once decoded is answered 413 and
// the handler is not called; header fields totalling more than 1 MiB are
// answered 431; an event payload larger than 16 MiB fails with
// [ErrEventTooLarge]. AWS itself caps synchronous payloads at 6 MB, and an
// Application Load Balancer takes at most 1 MB of response JSON from its
// Lambda target (and sends at most 1 MB of request body): a response that
// passes 6 MiB and 100 bytes (1,000,000 bytes behind an ALB) once encoded
// in the trigger's shape (a binary body grows by a third in base64) is
// replaced by a 500 response_too_large, because AWS would fail the
// invocation, or the load balancer answer 502, instead.
//
// The adapter's own answers, given without calling the handler, use the JSON
// form of verify's middleware, {"error":{"code":…,"message":…}}, with a
// stable code: invalid_base64_body (400, a body marked isBase64Encoded that
// is not standard base64), invalid_method, invalid_path and invalid_header
// (400; a header value with a control character is refused as net/http's
// server refuses it), body_too_large (413), headers_too_large (431), and
// response_too_large (500, the handler wrote more than MaxBodyBytes, or its
// response, encoded in the trigger's shape, passes what the trigger takes:
// see Bounds).
//
// # Compatibility
//
// Events and responses use the types of github.com/aws/aws-lambda-go/events.
// The response is buffered (Function URLs in the default BUFFERED invoke
// mode); response streaming is not supported. Binary and non-UTF-8 response
// bodies, and any body with a Content-Encoding, go back base64-encoded;
// API Gateway REST APIs need the media type listed in the API's binary
// media types to send them on as binary. An ALB target group without
// multi-value headers can carry one value per header: repeated headers are
// joined with commas, and only the first Set-Cookie is kept.
package lambda

import (
	"context"
	"errors"
	"net/http"

	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// MaxBodyBytes is the largest request body, after base64 decoding, that the
// adapter hands to the handler, and the most a handler may write. It matches
// the 6 MB limit AWS places on synchronous invocations. That limit holds for
// the response as encoded too, so a binary response body, which goes back in
// base64, can be at most about 4.5 MiB.
const MaxBodyBytes = 6 << 20

// maxEventBytes bounds the event payload the adapter parses at all: room for
// a base64-encoded MaxBodyBytes body and its headers.
const maxEventBytes = 16 << 20

// maxHeaderBytes bounds the header names and values of one request, as
// net/http's http.DefaultMaxHeaderBytes does for a server.
const maxHeaderBytes = http.DefaultMaxHeaderBytes

// Errors that fail an invocation. Every other problem with a request is
// answered with an HTTP status in the trigger's response shape.
var (
	// ErrUnknownEvent means the event is not JSON from one of the supported
	// HTTP triggers (API Gateway REST or HTTP API, Function URL, ALB), or
	// lacks what an HTTP request needs, such as the method.
	ErrUnknownEvent = errors.New("lambda: not an HTTP event from API Gateway, a Function URL or an ALB")

	// ErrEventTooLarge means the event payload is larger than any HTTP
	// trigger sends, so it was not parsed.
	ErrEventTooLarge = errors.New("lambda: event payload too large")
)

// Handler adapts an [http.Handler] to the Lambda HTTP triggers. It
// implements aws-lambda-go's lambda.Handler interface, so it can be passed
// to lambda.Start, lambda.StartWithOptions or lambda.NewHandler. Make one
// with [Wrap]; it is safe for concurrent use when the wrapped handler is.
type Handler struct {
	next http.Handler
}

// Wrap returns a Lambda handler that turns each HTTP trigger event into an
// *http.Request for h and h's answer into the trigger's response.
//
// The request carries the method, the raw path and query, the headers (a
// Host header, or else the trigger's domain name, becomes Request.Host; an
// HTTP API's cookies become the Cookie header), the body, RemoteAddr set to
// the caller's source IP with port 0, and the invocation's context, from
// which [RequestID] reads the Lambda request id.
func Wrap(h http.Handler) *Handler {
	return &Handler{next: h}
}

// Start runs h as the function's handler: it calls aws-lambda-go's
// lambda.StartWithOptions with [Wrap](h) and the given options, and never
// returns. Build the function with -tags lambda.norpc for the provided.al2023
// runtime.
func Start(h http.Handler, options ...awslambda.Option) {
	awslambda.StartWithOptions(Wrap(h), options...)
}

// Invoke handles one event: payload is the event JSON and the result is the
// response JSON in the shape the trigger expects. It implements
// aws-lambda-go's lambda.Handler. The error wraps [ErrUnknownEvent] or
// [ErrEventTooLarge]; every other failure is an HTTP answer.
func (a *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	if len(payload) > maxEventBytes {
		return nil, ErrEventTooLarge
	}
	ev, err := decodeEvent(payload)
	if err != nil {
		return nil, err
	}
	w := newResponseWriter()
	r, fail := ev.httpRequest(ctx)
	if fail != nil {
		fail.write(w)
	} else {
		a.next.ServeHTTP(w, r)
	}
	out, err := ev.encodeResponse(w.result(ev))
	if err == nil && len(out) > ev.responseLimit() {
		// Base64, JSON escaping or the headers took the answer past what
		// AWS accepts; the invocation would fail without a response.
		return ev.encodeResponse(responseTooLarge(ev))
	}
	return out, err
}

// RequestID returns the Lambda request id of the invocation that ctx
// belongs to (the AwsRequestID that AWS logs), or false outside Lambda. The
// request handed to the wrapped handler carries it in its context.
func RequestID(ctx context.Context) (string, bool) {
	lc, ok := lambdacontext.FromContext(ctx)
	if !ok || lc.AwsRequestID == "" {
		return "", false
	}
	return lc.AwsRequestID, true
}
