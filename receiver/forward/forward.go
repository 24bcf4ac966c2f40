package forward

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/render"
	"github.com/stairhook/stairhook/receiver/sink"
	"github.com/stairhook/stairhook/verify"
)

// UserAgent is the User-Agent of every forwarded request, unless the
// route's extra headers set one.
const UserAgent = "stairhook-forward/1"

const (
	defaultTimeout = 10 * time.Second
	// maxResponseBytes is how much of a response body the sink reads; the
	// rest is never read (the connection is closed instead of reused).
	maxResponseBytes = 64 << 10
	// maxSnippetBytes is how much of a non-2xx response body, redacted and
	// made one line, an error quotes.
	maxSnippetBytes = 256
	// minRedactLen is the shortest extra header or query value removed
	// from a quoted response: a shorter one is no credential, and
	// replacing each occurrence of it would leave the snippet unreadable.
	minRedactLen = 4
)

// Errors of New and of Sink.Deliver. Deliver's errors are classified as
// package sink asks (each comment says how), carry the reason class
// "forward" and the status code, such as "forward 401", or "forward
// unreachable", "forward no body", "forward sign", and never quote the
// secret, the signature, the URL's password or query, or an extra header's
// value.
var (
	// ErrInvalidRoute means New was given a Route that Route.Check finds
	// problems with; the error lists them.
	ErrInvalidRoute = errors.New("forward: invalid route")
	// ErrNoBody means the event has no raw body (Event.Raw is empty): it
	// was built in code rather than received, so there are no bytes to
	// forward as they were signed. Permanent.
	ErrNoBody = errors.New("forward: the event has no raw body to forward")
	// ErrSign means the event could not be signed, its id not being 1 to
	// 256 visible ASCII characters. The error wraps the signer's. Permanent.
	ErrSign = errors.New("forward: cannot sign the event")
	// ErrUnreachable means no answer came: the connection failed, TLS did
	// not verify, or the request timed out. Transient.
	ErrUnreachable = errors.New("forward: destination unreachable")
	// ErrRedirect means the destination answered 3xx; a redirect is never
	// followed, as it would send the signed event elsewhere. Permanent:
	// correct the route's url.
	ErrRedirect = errors.New("forward: the destination redirected; redirects are not followed")
	// ErrUnavailable means 408, 409, 429 or 5xx: the destination may take
	// the event later. Transient; with 429 or 503 and a Retry-After, a
	// *sink.RetryAfterError asking for that delay.
	ErrUnavailable = errors.New("forward: destination unavailable")
	// ErrRejected means any other answer outside 2xx, such as 400, or 401
	// from a destination that does not accept the signature (a wrong
	// secret). Permanent.
	ErrRejected = errors.New("forward: the destination rejected the event")
)

// Sink forwards each event, byte for byte, to one URL, signed afresh with
// the destination's secret. Each Deliver is one request: retries are the
// queue's, each signed with a new timestamp. It is safe for concurrent
// use.
type Sink struct {
	name     string
	url      string // as configured, for the request
	display  string // for errors and logs: no password, no query
	family   [3]string
	signer   *verify.Signer
	extra    http.Header
	timeout  time.Duration
	client   *http.Client
	log      *slog.Logger
	redacted []string // credentials to remove from quoted responses, longest first
	// now gives each attempt's timestamp; tests replace it.
	now func() time.Time
}

// staircaseFamily is the order of the headers Signer.Sign returns, and
// standardFamily the names they take with Route.Headers "standard".
var (
	staircaseFamily = [3]string{"X-Staircase-Id", "X-Staircase-Timestamp", "X-Staircase-Signature"}
	standardFamily  = [3]string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"}
)

// New returns the sink named name that forwards events as route says, or
// ErrInvalidRoute with the problems of route (under the config path
// "forward"). Its requests go through a copy of client (nil means a zero
// http.Client) that never follows a redirect; log (nil discards) gets a
// line per event forwarded.
func New(name string, route Route, client *http.Client, log *slog.Logger) (*Sink, error) {
	if errs := route.Check("forward"); len(errs) > 0 {
		return nil, fmt.Errorf("%w:\n%w", ErrInvalidRoute, errors.Join(errs...))
	}
	u, _ := parseURL(route.URL) // Check parsed it
	secret, _ := verify.ParseSecret(route.Secret)
	signer, err := verify.NewSigner(secret)
	if err != nil { // Check parsed the secret; keep its text out anyway
		return nil, fmt.Errorf("%w: forward.secret: unusable", ErrInvalidRoute)
	}
	s := &Sink{
		name: name, url: route.URL, display: displayURL(u),
		family: staircaseFamily, signer: signer, extra: http.Header{},
		timeout: cmp.Or(route.Timeout, defaultTimeout),
		log:     log, now: time.Now,
	}
	if route.Headers == HeadersStandard {
		s.family = standardFamily
	}
	// Whatever client is given, a copy of it never follows a redirect:
	// following a 307 or 308 would send the signed event, and the
	// credentials of the URL or the extra headers, to wherever the
	// Location says. The 3xx itself becomes ErrRedirect.
	c := http.Client{}
	if client != nil {
		c = *client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s.client = &c
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}

	// What a destination, or a proxy in front of it, may echo in an error
	// body: query values and the extra headers' values (those long
	// enough to be credentials), the secret, and the URL's password, as
	// written and in the Basic authorization made of it.
	for _, values := range u.Query() {
		s.redacted = append(s.redacted, values...)
	}
	for name, value := range route.ExtraHeaders {
		s.extra[http.CanonicalHeaderKey(name)] = []string{value}
		s.redacted = append(s.redacted, value)
	}
	s.redacted = slices.DeleteFunc(s.redacted, func(v string) bool { return len(v) < minRedactLen })
	key := secret.Encode()
	s.redacted = append(s.redacted, key, strings.TrimPrefix(key, verify.SecretPrefix))
	if pw, ok := u.User.Password(); ok && pw != "" {
		basic := u.User.Username() + ":" + pw
		s.redacted = append(s.redacted, pw, u.User.String(),
			base64.StdEncoding.EncodeToString([]byte(basic)),
			base64.RawStdEncoding.EncodeToString([]byte(basic)),
			base64.URLEncoding.EncodeToString([]byte(basic)),
			base64.RawURLEncoding.EncodeToString([]byte(basic)))
	}
	sortLongestFirst(s.redacted)
	return s, nil
}

// Name returns the sink's name, as given to New.
func (s *Sink) Name() string { return s.name }

// String describes the sink by its name and redacted URL, so a *Sink is
// safe in %v and logs.
func (s *Sink) String() string { return "forward.Sink(" + s.name + " → " + s.display + ")" }

// Deliver posts ev.Raw, exactly as it was received, to the route's URL,
// signed now with the event's id and the destination's secret. A 2xx
// answer is success; the errors are those of the package's var block.
func (s *Sink) Deliver(ctx context.Context, ev *event.Event) error {
	if len(ev.Raw) == 0 {
		return sink.Permanent(sink.Classed("forward no body", ErrNoBody))
	}
	sig, err := s.signer.Sign(ev.ID, s.now(), ev.Raw)
	if err != nil {
		return sink.Permanent(sink.Classed("forward sign", fmt.Errorf("%w: %w", ErrSign, err)))
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(ev.Raw))
	if err != nil { // New checked the URL; its text is not quoted
		return sink.Permanent(sink.Classed("forward url", fmt.Errorf("%w: %s: cannot build the request", ErrRejected, s.display)))
	}
	for k, v := range s.extra {
		req.Header[k] = slices.Clone(v)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", UserAgent)
	}
	req.Header.Set("Content-Type", "application/json")
	// The event id is the idempotency key, as the sender's is: it lets
	// net/http send the request again on a new connection when a
	// kept-alive one was closed under it.
	req.Header.Set("Idempotency-Key", ev.ID)
	var macs []string
	for i, from := range staircaseFamily {
		v := sig[from]
		if len(v) != 1 { // fail closed should Sign's headers change
			return sink.Permanent(sink.Classed("forward sign", fmt.Errorf("%w: the signer gave no %s header", ErrSign, from)))
		}
		req.Header[s.family[i]] = []string{v[0]}
		if i == 2 {
			for _, entry := range strings.Fields(v[0]) {
				_, mac, _ := strings.Cut(entry, ",")
				macs = append(macs, mac)
			}
		}
	}

	resp, err := s.client.Do(req)
	if err != nil {
		return sink.Classed("forward unreachable", fmt.Errorf("%w: %s: %s", ErrUnreachable, s.display, s.redact(transportReason(err), nil)))
	}
	defer resp.Body.Close()
	// Bounded: a destination that answers without end costs one buffer.
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		s.log.InfoContext(ctx, "event forwarded", "sink", s.name, "event_id", ev.ID, "status", code, "url", s.display)
		return nil
	}
	class := "forward " + strconv.Itoa(code)
	answer := fmt.Sprintf("%s: %d %s", s.display, code, http.StatusText(code))
	switch {
	case code >= 300 && code < 400:
		// Neither followed nor quoted: check the route's url.
		return sink.Permanent(sink.Classed(class, fmt.Errorf("%w: %s; check the route's forward url", ErrRedirect, answer)))
	case code == http.StatusRequestTimeout, code == http.StatusConflict, code == http.StatusTooManyRequests, code >= 500 && code < 600:
		err := sink.Classed(class, fmt.Errorf("%w: %s%s", ErrUnavailable, answer, s.snippet(data, macs)))
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			if d := sink.RetryAfter(resp.Header, s.now()); d > 0 {
				return &sink.RetryAfterError{Err: err, After: d}
			}
		}
		return err
	default:
		return sink.Permanent(sink.Classed(class, fmt.Errorf("%w: %s%s", ErrRejected, answer, s.snippet(data, macs))))
	}
}

// transportReason is the text of a failed request without the URL, which
// net/http's url.Error quotes with its query.
func transportReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return err.Error()
}

// snippet is ": " and the start of a response body, credentials and this
// request's signature removed, made one line and clipped; empty for an
// empty body.
func (s *Sink) snippet(data []byte, macs []string) string {
	text := render.OneLine(s.redact(string(data), macs))
	if text == "" {
		return ""
	}
	if len(text) > maxSnippetBytes {
		text = strings.ToValidUTF8(text[:maxSnippetBytes], "") + "…"
	}
	return ": " + text
}

// redact replaces every credential of the sink, and each of macs, in text.
func (s *Sink) redact(text string, macs []string) string {
	for _, list := range [][]string{macs, s.redacted} {
		for _, secret := range list {
			if secret != "" {
				text = strings.ReplaceAll(text, secret, "[redacted]")
			}
		}
	}
	return text
}

// displayURL is u as errors and logs show it: the password replaced by
// URL.Redacted, and the query, where webhook tokens often travel, too.
func displayURL(u *url.URL) string {
	c := *u
	if c.RawQuery != "" {
		c.RawQuery = "redacted"
	}
	c.ForceQuery = false
	return c.Redacted()
}

func sortLongestFirst(list []string) {
	// A credential that contains a shorter one (an extra header's value
	// holding a query value, say) is replaced first, whole.
	slices.SortStableFunc(list, func(a, b string) int { return len(b) - len(a) })
}
