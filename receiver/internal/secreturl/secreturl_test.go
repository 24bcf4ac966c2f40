package secreturl

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
)

const workflow = "https://prod.example.com/workflows/0123456789abcdef/triggers/manual/paths/invoke?api-version=1&sig=SECRETSIGNATURE"

func TestCheck(t *testing.T) {
	for u, want := range map[string]string{
		"https://hooks.slack.com/services/T/B/X": "",
		"http://127.0.0.1:8080/hook":             "",
		"http://localhost/hook":                  "",
		"http://example.com/hook?sig=SECRET":     "must be https (http only for a loopback test server)",
		"example.com/hook?sig=SECRET":            "must be an absolute https URL",
		"ftp://example.com/?sig=SECRET":          "must be an absolute https URL",
		"https://example.com:bad/?sig=SECRET":    "must be an absolute https URL",
		"https://u:SECRET@example.com/":          "must not carry credentials or a fragment",
		"https://example.com/?sig=SECRET#frag":   "must not carry credentials or a fragment",
	} {
		err := Check(u)
		if want == "" {
			assert.NoError(t, err, u)
			continue
		}
		assert.EqualError(t, err, want, u)
	}
}

func TestHost(t *testing.T) {
	assert.Equal(t, "https://prod.example.com/…", Host(workflow))
	assert.Equal(t, "[redacted URL]", Host("/relative/SECRET"))
	assert.Equal(t, "[redacted URL]", Host("https://example.com:bad/SECRET"))
}

func TestFormsAndQueryValues(t *testing.T) {
	forms := Forms(workflow)
	assert.Equal(t, workflow, forms[0])
	assert.Contains(t, forms, "/workflows/0123456789abcdef/triggers/manual/paths/invoke")
	assert.Contains(t, forms, "api-version=1&sig=SECRETSIGNATURE")
	assert.NotContains(t, forms, "1", "too short to be a secret")
	assert.Equal(t, []string{"SECRETSIGNATURE"}, QueryValues(workflow))
	assert.NotContains(t, Forms("https://a.example/"), "/", "a bare / is no secret")
	assert.Nil(t, QueryValues("https://example.com:bad/?sig=SECRETSIGNATURE"))
}

func TestScrub(t *testing.T) {
	secrets := append(Forms(workflow), QueryValues(workflow)...)

	// A *url.Error is rebuilt with the host alone.
	ue := &url.Error{Op: "Post", URL: workflow, Err: context.DeadlineExceeded}
	err := Scrub(fmt.Errorf("wrapped: %w", ue), secrets)
	assert.Equal(t, `Post "https://prod.example.com/…": context deadline exceeded`, err.Error())
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	// Other text loses every secret and keeps only the context's error.
	leaky := errors.Join(context.Canceled, errors.New("proxy: SECRETSIGNATURE at "+workflow))
	err = Scrub(leaky, secrets)
	assert.Equal(t, "context canceled\nproxy: [redacted] at [redacted]", err.Error())
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)

	clean := errors.New("dial tcp: refused")
	assert.Same(t, clean, Scrub(clean, secrets))
}
