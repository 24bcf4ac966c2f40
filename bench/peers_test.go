package bench

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	ghwebhooks "github.com/go-playground/webhooks/v6/github"
	"github.com/stairhook/stairhook/verify"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	stripewebhook "github.com/stripe/stripe-go/v82/webhook"
	svix "github.com/svix/svix-webhooks/go"
)

// role says how a row of the results is read.
type role string

const (
	roleOurs      role = "ours"      // this module's verify package
	rolePeer      role = "peer"      // a published library a receiver would pick instead
	roleReference role = "reference" // what a receiver would write by hand
	roleBaseline  role = "baseline"  // the hardware limit: SHA-256 of the signed bytes
)

// lib is one way of checking a signed request. prepare signs in (in the
// library's own header format, with an independent HMAC) and returns a
// function that verifies a body against those headers: nil means accepted.
type lib struct {
	name    string
	role    role
	prepare func(in input) (func(body []byte) error, error)
}

var libs = []lib{
	{"stairhook-v1", roleOurs, prepareStairhookV1},
	{"stairhook-body", roleOurs, prepareStairhookBody},
	{"svix", rolePeer, prepareSvix},
	{"standardwebhooks", rolePeer, prepareStandardWebhooks},
	{"stripe", rolePeer, prepareStripe},
	{"goplayground-github", rolePeer, prepareGoPlayground},
	{"handwritten-hmac", roleReference, prepareHandwritten},
	{"baseline-sha256", roleBaseline, prepareBaseline},
}

// mac is HMAC-SHA256(key, parts...), computed independently of every
// library under test.
func mac(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// v1Signature is the Standard Webhooks style "v1,<base64>" entry over
// id.timestamp.body.
func v1Signature(in input) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(in.key, in.signed))
}

// prepareStairhookV1 is verify.Verifier.Verify on scheme v1, with the clock
// fixed at the signed time.
func prepareStairhookV1(in input) (func([]byte) error, error) {
	v, err := newStairhookVerifier(in, false)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("X-Staircase-Id", in.id)
	h.Set("X-Staircase-Timestamp", in.tsText())
	h.Set("X-Staircase-Signature", v1Signature(in))
	return func(body []byte) error {
		_, err := v.Verify(h, body)
		return err
	}, nil
}

// prepareStairhookBody is verify.Verifier.Verify in the legacy body mode
// (AllowBodySignature): a GitHub-style "sha256=<hex>" of the body alone.
func prepareStairhookBody(in input) (func([]byte) error, error) {
	v, err := newStairhookVerifier(in, true)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("X-Staircase-Signature", "sha256="+hex.EncodeToString(mac(in.key, in.body)))
	return func(body []byte) error {
		_, err := v.Verify(h, body)
		return err
	}, nil
}

func newStairhookVerifier(in input, allowBody bool) (*verify.Verifier, error) {
	sec, err := verify.RawSecret(in.key)
	if err != nil {
		return nil, err
	}
	ts := in.ts
	return verify.NewVerifier(verify.Options{
		Keys:               []verify.Key{{Label: "bench", Secret: sec}},
		Now:                func() time.Time { return ts },
		AllowBodySignature: allowBody,
	})
}

// prepareSvix is svix-webhooks' (*Webhook).Verify with svix-* headers. It
// checks the timestamp against time.Now: the input is timestamped when the
// benchmark starts.
func prepareSvix(in input) (func([]byte) error, error) {
	wh, err := svix.NewWebhookRaw(in.key)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Svix-Id", in.id)
	h.Set("Svix-Timestamp", in.tsText())
	h.Set("Svix-Signature", v1Signature(in))
	return func(body []byte) error { return wh.Verify(body, h) }, nil
}

// prepareStandardWebhooks is the Standard Webhooks reference Go library's
// (*Webhook).Verify with webhook-* headers, against time.Now.
func prepareStandardWebhooks(in input) (func([]byte) error, error) {
	wh, err := standardwebhooks.NewWebhookRaw(in.key)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set(standardwebhooks.HeaderWebhookID, in.id)
	h.Set(standardwebhooks.HeaderWebhookTimestamp, in.tsText())
	h.Set(standardwebhooks.HeaderWebhookSignature, v1Signature(in))
	return func(body []byte) error { return wh.Verify(body, h) }, nil
}

// prepareStripe is stripe-go's webhook.ValidatePayload with its own
// "t=<ts>,v1=<hex>" header: HMAC over timestamp + "." + body, keyed with the
// same key bytes passed as a string. Stripe signs no id. It checks the
// timestamp against time.Now.
func prepareStripe(in input) (func([]byte) error, error) {
	sig := mac(in.key, []byte(in.tsText()), []byte("."), in.body)
	header := "t=" + in.tsText() + ",v1=" + hex.EncodeToString(sig)
	secret := string(in.key)
	return func(body []byte) error { return stripewebhook.ValidatePayload(body, header, secret) }, nil
}

// prepareGoPlayground is go-playground/webhooks' GitHub (Webhook).Parse with
// an X-Hub-Signature-256 "sha256=<hex>" body HMAC. Parse takes an
// *http.Request, reads its body and, once the MAC matches, decodes the JSON
// payload (here a ping event): there is no way to run its check alone. The
// request is built once and only its body reader is reset per call, so no
// socket or httptest cost is measured, but the body copy and the JSON decode
// are.
func prepareGoPlayground(in input) (func([]byte) error, error) {
	hook, err := ghwebhooks.New(ghwebhooks.Options.Secret(string(in.key)))
	if err != nil {
		return nil, err
	}
	req := &http.Request{Method: http.MethodPost, Header: http.Header{}}
	req.Header.Set("X-GitHub-Event", string(ghwebhooks.PingEvent))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac(in.key, in.body)))
	rd := new(bytes.Reader)
	return func(body []byte) error {
		rd.Reset(body)
		req.Body = io.NopCloser(rd)
		payload, err := hook.Parse(req, ghwebhooks.PingEvent)
		if err != nil {
			return err
		}
		if _, ok := payload.(ghwebhooks.PingPayload); !ok {
			return errors.New("go-playground: unexpected payload type")
		}
		return nil
	}, nil
}

// prepareHandwritten is the check a receiver writes by hand for a
// GitHub-style "sha256=<hex>" body HMAC, with crypto/hmac and nothing else.
func prepareHandwritten(in input) (func([]byte) error, error) {
	header := "sha256=" + hex.EncodeToString(mac(in.key, in.body))
	key := in.key
	return func(body []byte) error {
		got, err := hex.DecodeString(strings.TrimPrefix(header, "sha256="))
		if err != nil {
			return err
		}
		m := hmac.New(sha256.New, key)
		m.Write(body)
		if !hmac.Equal(m.Sum(nil), got) {
			return errors.New("handwritten: signature mismatch")
		}
		return nil
	}, nil
}

// baselineSum keeps the baseline's result alive so the compiler cannot drop
// the hashing.
var baselineSum [sha256.Size]byte

// prepareBaseline is sha256.Sum256 over the v1 signed bytes
// (id.timestamp.body), built before the run. It verifies nothing: it is the
// least work any v1 check must do. It ignores the body it is given.
func prepareBaseline(in input) (func([]byte) error, error) {
	signed := in.signed
	return func([]byte) error {
		baselineSum = sha256.Sum256(signed)
		return nil
	}, nil
}
