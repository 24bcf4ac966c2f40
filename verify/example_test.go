package verify_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/stairhook/stairhook/verify"
)

// A receiver configured with the secret the admin copied from Staircase.
// Tests and this example fix the clock; a real receiver leaves Now nil.
func ExampleNewVerifier() {
	secret, err := verify.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		log.Fatal(err)
	}
	v, err := verify.NewVerifier(verify.Options{
		Keys: []verify.Key{{Label: "current", Secret: secret}},
		Now:  func() time.Time { return time.Unix(1614265330, 0) },
	})
	if err != nil {
		log.Fatal(err)
	}
	// The Standard Webhooks published example, in Staircase headers.
	h := http.Header{}
	h.Set("X-Staircase-Id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("X-Staircase-Timestamp", "1614265330")
	h.Set("X-Staircase-Signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	res, err := v.Verify(h, []byte(`{"test": 2432232314}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.KeyLabel, res.ID, res.Scheme, res.Timestamp.UTC().Format(time.RFC3339))
	// Output: current msg_p5jXN8AQM9LWM0D4loKWxJek v1 2021-02-25T15:02:10Z
}

// Sign on the sending side, verify the raw bytes on the receiving side.
func ExampleVerifier_Verify() {
	secret, _ := verify.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	now := time.Unix(1764115200, 0)
	signer, _ := verify.NewSigner(secret)
	body := []byte(`{"type":"signal.created"}`)
	h, _ := signer.Sign("evt_42", now.Add(-3*time.Second), body)

	v, _ := verify.NewVerifier(verify.Options{
		Keys: []verify.Key{{Label: "current", Secret: secret}},
		Now:  func() time.Time { return now },
	})
	res, err := v.Verify(h, body)
	fmt.Println(res.ID, res.KeyLabel, err)

	_, err = v.Verify(h, []byte(`{"type": "signal.created"}`))
	fmt.Println(errors.Is(err, verify.ErrNoMatchingSignature))
	// Output:
	// evt_42 current <nil>
	// true
}

func ExampleSigner_Sign() {
	secret, _ := verify.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	signer, err := verify.NewSigner(secret)
	if err != nil {
		log.Fatal(err)
	}
	h, err := signer.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range []string{"X-Staircase-Id", "X-Staircase-Timestamp", "X-Staircase-Signature"} {
		fmt.Printf("%s: %s\n", name, h.Get(name))
	}
	// Output:
	// X-Staircase-Id: msg_p5jXN8AQM9LWM0D4loKWxJek
	// X-Staircase-Timestamp: 1614265330
	// X-Staircase-Signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
}

// A secret prints redacted; only Encode gives its text, to show the admin
// once.
func ExampleParseSecret() {
	s, err := verify.ParseSecret("  whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s)
	fmt.Println(s.Encode())

	_, err = verify.ParseSecret("whsec_c2hvcnQ=")
	fmt.Println(errors.Is(err, verify.ErrInvalidSecret))
	// Output:
	// verify.Secret(redacted)
	// whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
	// true
}

// After "Regenerate secret", keep the old key until senders stop using it:
// the result's KeyLabel shows which one matched, and Expires retires the
// old key on a date.
func Example_rotation() {
	oldSecret, _ := verify.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	newSecret, _ := verify.ParseSecret("whsec_c3RhaXJob29rIGV4YW1wbGUgc2VjcmV0ISE=")
	retire := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	now := time.Date(2025, 11, 26, 0, 0, 0, 0, time.UTC)
	v, _ := verify.NewVerifier(verify.Options{
		Keys: []verify.Key{
			{Label: "2025-11", Secret: newSecret},
			{Label: "2025-06", Secret: oldSecret, Expires: retire},
		},
		Now: func() time.Time { return now },
	})
	body := []byte(`{"type":"signal.created"}`)
	for _, s := range []verify.Secret{oldSecret, newSecret} {
		signer, _ := verify.NewSigner(s)
		h, _ := signer.Sign("evt_1", now, body)
		res, err := v.Verify(h, body)
		fmt.Println(res.KeyLabel, err)
	}

	// After the expiry the old secret no longer verifies.
	now = retire.Add(time.Minute)
	signer, _ := verify.NewSigner(oldSecret)
	h, _ := signer.Sign("evt_2", now, body)
	_, err := v.Verify(h, body)
	fmt.Println(errors.Is(err, verify.ErrNoMatchingSignature))
	// Output:
	// 2025-06 <nil>
	// 2025-11 <nil>
	// true
}

// Map failures to stable status codes with errors.Is, log the detail on
// the server, and never echo the error to the caller.
func Example_errorHandling() {
	secret, _ := verify.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	v, _ := verify.NewVerifier(verify.Options{
		Keys: []verify.Key{{Label: "current", Secret: secret}},
		Now:  func() time.Time { return time.Unix(1764115200, 0) },
	})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		case err != nil:
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		if _, err := v.Verify(r.Header, body); err != nil {
			// The detail goes to your logs (log.Printf("webhook: %v", err)).
			switch {
			case errors.Is(err, verify.ErrMissingSignature), errors.Is(err, verify.ErrMalformedHeader):
				http.Error(w, "bad signature headers", http.StatusBadRequest)
			default:
				http.Error(w, "signature rejected", http.StatusUnauthorized)
			}
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})

	for _, sig := range []string{"", "v1,not-base64", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="} {
		r := httptest.NewRequest(http.MethodPost, "/webhooks/staircase", strings.NewReader(`{}`))
		r.Header.Set("X-Staircase-Id", "evt_1")
		r.Header.Set("X-Staircase-Timestamp", "1764115200")
		if sig != "" {
			r.Header.Set("X-Staircase-Signature", sig)
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		fmt.Printf("%d %s", w.Code, w.Body.String())
	}
	// Output:
	// 400 bad signature headers
	// 400 bad signature headers
	// 401 signature rejected
}

// One line from the secret's text to a ready verifier; here signed and
// checked in one place, as a test of a handler would.
func ExampleFromSecrets() {
	v, err := verify.FromSecrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") // os.Getenv("STAIRHOOK_SECRET")
	if err != nil {
		log.Fatal(err)
	}
	secret, _ := verify.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	signer, _ := verify.NewSigner(secret)
	body := []byte(`{"type":"signal.created"}`)
	h, _ := signer.Sign("evt_42", time.Now(), body)
	res, err := v.Verify(h, body)
	fmt.Println(res.ID, res.KeyLabel, err)

	// An unset environment variable is an error, not a verifier that
	// accepts nothing.
	_, err = verify.FromSecrets("")
	fmt.Println(errors.Is(err, verify.ErrInvalidSecret))
	// Output:
	// evt_42 key1 <nil>
	// true
}

// During a rotation, the new secret and the old one.
func ExampleFromSecrets_rotation() {
	const current, previous = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
	v, err := verify.FromSecrets(current, previous)
	if err != nil {
		log.Fatal(err)
	}
	old, _ := verify.ParseSecret(previous)
	signer, _ := verify.NewSigner(old) // a sender not switched yet
	body := []byte(`{}`)
	h, _ := signer.Sign("evt_43", time.Now(), body)
	res, err := v.Verify(h, body)
	fmt.Println(res.KeyLabel, err)
	// Output: key2 <nil>
}
