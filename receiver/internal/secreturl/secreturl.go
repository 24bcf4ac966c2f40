// Package secreturl keeps a URL that is itself a secret, such as a Slack
// incoming webhook or a Teams workflow URL, out of what a sink shows: the
// built-in chat sinks (packages slack and teams) share it.
//
// [Check] vets such a URL in a config without quoting it; [Host] is what
// errors and logs may show of it; [Forms] and [QueryValues] are the texts
// that would give it away, and [Scrub] removes them from an error.
package secreturl

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
)

// Check checks a URL that carries a secret or has one sent to it:
// absolute https (http only on loopback), no credentials nor fragment. Its
// errors never quote it.
func Check(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("must be an absolute https URL")
	}
	if u.User != nil || u.Fragment != "" {
		return errors.New("must not carry credentials or a fragment")
	}
	if u.Scheme == "http" {
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return errors.New("must be https (http only for a loopback test server)")
		}
	}
	return nil
}

// Host is scheme://host/… of a URL: where it points, without the path
// and query that make it a secret.
func Host(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "[redacted URL]"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// minSecret is the length below which a part of a URL is not taken for a
// secret: never a bare "/" or "1.0" that would blank every error.
const minSecret = 8

// Forms are the forms in which the URL raw could appear in an error's
// text: whole, re-serialised, its path (escaped or not) and its query.
func Forms(raw string) []string {
	out := []string{raw}
	if u, err := url.Parse(raw); err == nil {
		out = appendLong(out, u.String(), u.EscapedPath(), u.Path, u.RawQuery)
	}
	return out
}

// QueryValues are the values of the URL raw's query long enough to be a
// key, for a URL that carries its secret there (a Teams workflow's sig and
// id), which an error could quote alone.
func QueryValues(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	for _, vs := range u.Query() {
		out = appendLong(out, vs...)
	}
	return out
}

func appendLong(out []string, parts ...string) []string {
	for _, s := range parts {
		if len(s) >= minSecret {
			out = append(out, s)
		}
	}
	return out
}

// Scrub removes secrets from err: a *url.Error names the request's URL,
// which may be a secret itself, so it is rebuilt with the Host alone; any
// other text that still holds one of secrets is replaced, keeping only
// whether the context ended. An error that holds no secret is returned
// as it is.
func Scrub(err error, secrets []string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = &url.Error{Op: ue.Op, URL: Host(ue.URL), Err: ue.Err}
	}
	text := err.Error()
	leaked := false
	for _, secret := range secrets {
		if strings.Contains(text, secret) {
			text = strings.ReplaceAll(text, secret, "[redacted]")
			leaked = true
		}
	}
	if !leaked {
		return err
	}
	out := &scrubbedError{text: text}
	for _, cause := range []error{context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, cause) {
			out.cause = cause
		}
	}
	return out
}

// scrubbedError is an error whose text had secrets removed; it unwraps to
// the context's error, if that was the cause, never to the original.
type scrubbedError struct {
	text  string
	cause error
}

func (e *scrubbedError) Error() string { return e.text }
func (e *scrubbedError) Unwrap() error { return e.cause }
