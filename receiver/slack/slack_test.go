package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/sinktest"
	"github.com/stairhook/stairhook/receiver/sink"
)

type fixture struct {
	api  *standIn
	sink *Sink
	logs *bytes.Buffer
}

// newWebhookSink is a sink posting to the stand-in's incoming webhook.
func newWebhookSink(t *testing.T, route Route) *fixture {
	t.Helper()
	api := newStandIn(t)
	return newFixture(t, api, Config{WebhookURL: api.webhookURL(), Timeout: 5 * time.Second}, route)
}

// newTokenSink is a sink posting with the stand-in's bot token to
// #cs-alerts.
func newTokenSink(t *testing.T) *fixture {
	t.Helper()
	api := newStandIn(t)
	return newFixture(t, api, Config{Token: api.token, APIURL: api.apiURL(), Timeout: 5 * time.Second}, Route{Channel: "#cs-alerts"})
}

func newFixture(t *testing.T, api *standIn, cfg Config, route Route) *fixture {
	t.Helper()
	logs := &bytes.Buffer{}
	s, err := New("staircase.route1.slack", cfg, route, nil, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	return &fixture{api: api, sink: s, logs: logs}
}

// assertNoSecret fails when text holds the token or any part of the
// webhook URL that makes it a secret.
func assertNoSecret(t *testing.T, text string) {
	t.Helper()
	for _, secret := range []string{testToken, "SeCrEtToKeN", testHookKey, testHookDir} {
		assert.NotContains(t, text, secret)
	}
}

func TestSlackWebhookPostsTheBuiltMessage(t *testing.T) {
	f := newWebhookSink(t, Route{})
	ev := evilEvent()
	require.NoError(t, f.sink.Deliver(sinktest.Context(t), ev))

	posts := f.api.accepted()
	require.Len(t, posts, 1)
	want, err := f.sink.builder.Build(ev)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(posts[0].raw), "the dry run's bytes are what is posted")
	assert.Equal(t, "false,false", posts[0].unfurl)
	assert.Contains(t, f.logs.String(), "slack message posted")
	assert.Contains(t, f.logs.String(), "incoming webhook http://127.0.0.1:")
	assertNoSecret(t, f.logs.String())
}

func TestSlackBotTokenPostsToTheChannel(t *testing.T) {
	f := newTokenSink(t)
	ev := evilEvent()
	require.NoError(t, f.sink.Deliver(sinktest.Context(t), ev))

	posts := f.api.accepted()
	require.Len(t, posts, 1)
	msg, err := f.sink.builder.Message(ev)
	require.NoError(t, err)
	assert.Equal(t, "C0CSALERTS", posts[0].channel)
	assert.Equal(t, msg.Text, posts[0].text, "the text is sent as built, not escaped twice")
	got, err := json.Marshal(posts[0].blocks)
	require.NoError(t, err)
	want, err := json.Marshal(msg.Blocks.BlockSet)
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(got))
	assert.Equal(t, "false,false", posts[0].unfurl)
	assert.Contains(t, f.logs.String(), "ts=1700000000.000100")
	assertNoSecret(t, f.logs.String())
}

// The errors of chat.postMessage that a retry cannot fix are permanent,
// each naming Slack's reason; the others, and codes Slack adds later, are
// transient.
func TestSlackAPIErrorCodes(t *testing.T) {
	codes := slices.Sorted(func(yield func(string) bool) {
		for c := range permanentCodes {
			if !yield(c) {
				return
			}
		}
	})
	// The ones the issue names are in the list.
	for _, c := range []string{"channel_not_found", "invalid_auth", "not_in_channel"} {
		require.Contains(t, codes, c)
	}
	for _, code := range codes {
		t.Run(code, func(t *testing.T) {
			f := newTokenSink(t)
			f.api.inject(fault{code: code})
			err := f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent())
			require.ErrorIs(t, err, sink.ErrPermanent)
			require.ErrorIs(t, err, ErrRejected)
			assert.Contains(t, err.Error(), ": "+code)
			assert.Equal(t, "slack "+code, sink.ReasonClass(err))
			assertNoSecret(t, err.Error())
		})
	}
	for _, code := range []string{"internal_error", "fatal_error", "ratelimited", "service_unavailable", "brand_new_error"} {
		t.Run(code, func(t *testing.T) {
			f := newTokenSink(t)
			f.api.inject(fault{code: code})
			ev := sinktest.HostileEvent()
			err := f.sink.Deliver(sinktest.Context(t), ev)
			require.ErrorIs(t, err, ErrUnavailable)
			assert.NotErrorIs(t, err, sink.ErrPermanent)
			assert.Contains(t, err.Error(), code)
			require.NoError(t, f.sink.Deliver(sinktest.Context(t), ev), "the retry posts")
			assert.Len(t, f.api.accepted(), 1)
		})
	}
}

// The stand-in's own answers: a wrong token, an unknown channel.
func TestSlackWrongTokenAndChannel(t *testing.T) {
	api := newStandIn(t)
	f := newFixture(t, api, Config{Token: "xoxb-wrong-token", APIURL: api.apiURL()}, Route{Channel: "#cs-alerts"})
	err := f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent())
	require.ErrorIs(t, err, sink.ErrPermanent)
	assert.Contains(t, err.Error(), "invalid_auth")
	assert.NotContains(t, err.Error(), "xoxb-wrong-token")
	assert.NotContains(t, f.logs.String(), "xoxb-wrong-token")

	f = newFixture(t, api, Config{Token: api.token, APIURL: api.apiURL()}, Route{Channel: "#nope"})
	err = f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent())
	require.ErrorIs(t, err, sink.ErrPermanent)
	assert.EqualError(t, err, "slack: message rejected: chat.postMessage to #nope: channel_not_found")
	assert.Empty(t, api.accepted())
}

// A 429 with Retry-After goes to the queue as a *sink.RetryAfterError with
// that delay, in seconds or as a date; without one it is a plain transient
// failure, for the queue's own backoff.
func TestSlackRateLimited(t *testing.T) {
	for _, mode := range []string{"webhook", "token"} {
		t.Run(mode, func(t *testing.T) {
			newSink := func() *fixture {
				if mode == "webhook" {
					return newWebhookSink(t, Route{})
				}
				return newTokenSink(t)
			}
			f := newSink()
			f.api.inject(fault{status: http.StatusTooManyRequests, retryAfter: "7"})
			err := f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent())
			var ra *sink.RetryAfterError
			require.ErrorAs(t, err, &ra)
			assert.Equal(t, 7*time.Second, ra.After)
			assert.ErrorIs(t, err, ErrRateLimited)
			assert.NotErrorIs(t, err, sink.ErrPermanent)
			assert.Equal(t, "slack 429", sink.ReasonClass(err))

			f.api.inject(fault{status: http.StatusTooManyRequests, retryAfter: time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)})
			err = f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent())
			require.ErrorAs(t, err, &ra)
			assert.InDelta(t, 90, ra.After.Seconds(), 2, "an HTTP date, which slack-go cannot parse")

			f.api.inject(fault{status: http.StatusTooManyRequests, retryAfter: "86400"})
			err = f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent())
			require.ErrorAs(t, err, &ra)
			assert.Equal(t, time.Hour, ra.After, "capped")

			f.api.inject(fault{status: http.StatusTooManyRequests})
			err = f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent())
			require.ErrorIs(t, err, ErrRateLimited)
			assert.False(t, errors.As(err, &ra), "no delay asked: the queue's backoff")

			require.NoError(t, f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent()))
			assert.Len(t, f.api.accepted(), 1)
		})
	}
}

// HTTP answers: 5xx and 408 are transient; an incoming webhook's 4xx is
// permanent and names Slack's code; a redirect is permanent and never
// followed; a body that is not a code is never quoted.
func TestSlackHTTPAnswers(t *testing.T) {
	cases := []struct {
		name      string
		fault     fault
		permanent bool
		sentinel  error
		text      string
		class     string
	}{
		{"500", fault{status: 500, code: "<html>oops</html>"}, false, ErrUnavailable, "500 Internal Server Error", "slack 500"},
		{"502", fault{status: 502}, false, ErrUnavailable, "502 Bad Gateway", "slack 502"},
		{"408", fault{status: 408}, false, ErrUnavailable, "408 Request Timeout", "slack 408"},
		{"404 no_service", fault{status: 404, code: "no_service"}, true, ErrRejected, "404 Not Found: no_service", "slack no_service"},
		{"403 invalid_token", fault{status: 403, code: "invalid_token"}, true, ErrRejected, "403 Forbidden: invalid_token", "slack invalid_token"},
		{"410 channel_is_archived", fault{status: 410, code: "channel_is_archived"}, true, ErrRejected, "410 Gone: channel_is_archived", "slack channel_is_archived"},
		{"400 invalid_payload", fault{status: 400, code: "invalid_payload"}, true, ErrRejected, "400 Bad Request: invalid_payload", "slack invalid_payload"},
		{"400 unknown code", fault{status: 400, code: "shiny_new_code"}, true, ErrRejected, "400 Bad Request: shiny_new_code", "slack 400"},
		{"400 echoing the request", fault{status: 400, code: "bad request to " + testHookDir + testHookKey + " xoxb-1"}, true, ErrRejected, "400 Bad Request", "slack 400"},
		{"302", fault{status: 302, location: "/services/elsewhere"}, true, ErrRejected, "302 Found: the answer is a redirect", "slack 302"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newWebhookSink(t, Route{})
			f.api.inject(tc.fault)
			err := f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent())
			require.Error(t, err)
			assert.Equal(t, tc.permanent, errors.Is(err, sink.ErrPermanent), "%v", err)
			assert.ErrorIs(t, err, tc.sentinel)
			assert.Contains(t, err.Error(), tc.text)
			assert.Equal(t, tc.class, sink.ReasonClass(err))
			assert.NotContains(t, err.Error(), "<html>")
			assertNoSecret(t, err.Error())
			assert.Equal(t, 1, f.api.requests(), "one request: no redirect followed, no retry inside the sink")
		})
	}
	// A 503 with Retry-After is waited for exactly.
	f := newWebhookSink(t, Route{})
	f.api.inject(fault{status: 503, retryAfter: "30"})
	var ra *sink.RetryAfterError
	require.ErrorAs(t, f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent()), &ra)
	assert.Equal(t, 30*time.Second, ra.After)
}

// A network failure names the webhook's host, never the webhook URL,
// which is the secret: net/http's *url.Error quotes the whole URL.
func TestSlackNetworkErrorsHideTheWebhookURL(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	cfg := Config{WebhookURL: "http://" + addr + testHookDir + testHookKey, Timeout: 2 * time.Second}
	logs := &bytes.Buffer{}
	s, err := New("s", cfg, Route{}, nil, slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, err)
	err = s.Deliver(sinktest.Context(t), sinktest.HostileEvent())
	require.ErrorIs(t, err, ErrUnavailable)
	assert.NotErrorIs(t, err, sink.ErrPermanent)
	assert.Contains(t, err.Error(), "connection refused")
	assert.Contains(t, err.Error(), `Post "http://`+addr+`/…": dial tcp`)
	assert.Equal(t, "slack network", sink.ReasonClass(err))
	assertNoSecret(t, err.Error())
	assertNoSecret(t, logs.String())

	// A timeout: the same, and still a deadline for errors.Is.
	f := newWebhookSink(t, Route{})
	f.api.hang = make(chan struct{})
	defer close(f.api.hang)
	f.sink.timeout = 200 * time.Millisecond
	err = f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent())
	require.ErrorIs(t, err, ErrUnavailable)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assertNoSecret(t, err.Error())
}

// Whatever form an error's text takes, a secret in it is replaced, and
// the error keeps saying whether the context ended.
func TestSlackScrub(t *testing.T) {
	f := newWebhookSink(t, Route{})
	leaky := errors.Join(context.DeadlineExceeded, errors.New("proxy said: POST "+f.api.webhookURL()+" failed"))
	err := f.sink.scrub(leaky)
	assertNoSecret(t, err.Error())
	assert.Contains(t, err.Error(), "[redacted]")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, context.Canceled)
	clean := errors.New("dial tcp: refused")
	assert.Same(t, clean, f.sink.scrub(clean))
}

func TestSlackDeliverHonoursContext(t *testing.T) {
	f := newWebhookSink(t, Route{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := f.sink.Deliver(ctx, sinktest.HostileEvent())
	require.ErrorIs(t, err, ErrUnavailable)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, f.api.accepted())
}

// Answers are read up to maxResponseBody: a huge answer does not grow the
// sink's memory.
func TestSlackAnswerBounded(t *testing.T) {
	api := newStandIn(t)
	api.inject(fault{status: 500, code: strings.Repeat("x", 10<<20)})
	f := newFixture(t, api, Config{WebhookURL: api.webhookURL()}, Route{})
	err := f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent())
	require.ErrorIs(t, err, ErrUnavailable)

	// Straight through the transport: the body stops at the bound.
	tr := &answerTransport{}
	req, err := http.NewRequest(http.MethodPost, api.webhookURL(), strings.NewReader("{}"))
	require.NoError(t, err)
	api.inject(fault{status: 500, code: strings.Repeat("x", 1<<20)})
	resp, err := tr.RoundTrip(req.WithContext(context.WithValue(context.Background(), answerKey{}, &answer{})))
	require.NoError(t, err)
	defer resp.Body.Close()
	var n int64
	buf := make([]byte, 32<<10)
	for {
		k, err := resp.Body.Read(buf)
		n += int64(k)
		if err != nil {
			break
		}
	}
	assert.Equal(t, int64(maxResponseBody), n)
}

func TestNewChecksConfigAndRoute(t *testing.T) {
	_, err := New("s", Config{}, Route{}, nil, nil)
	require.ErrorContains(t, err, "slack.webhook_url: set webhook_url")
	_, err = New("s", Config{Token: "xoxb-1"}, Route{}, nil, nil)
	require.EqualError(t, err, "channel: required with a bot token (slack.token)")
	_, err = New("s", Config{WebhookURL: "https://hooks.slack.com/services/x"}, Route{Channel: "#a"}, nil, nil)
	require.ErrorContains(t, err, "channel: not used with an incoming webhook")
	_, err = New("s", Config{WebhookURL: "https://hooks.slack.com/services/x"}, Route{Text: "{{.Nope}}"}, nil, nil)
	require.ErrorContains(t, err, "Nope")
	s, err := New("s", Config{Token: "xoxb-1", APIURL: "https://slack-gov.com/api"}, Route{Channel: "C0123456789"}, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "s", s.Name())
	assert.Equal(t, defaultTimeout, s.timeout)
}

func BenchmarkSlackBuild(b *testing.B) {
	builder, err := NewMessageBuilder(Route{})
	require.NoError(b, err)
	ev := sinktest.HostileEvent()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := builder.Build(ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSlackBuildEvil(b *testing.B) {
	builder, err := NewMessageBuilder(Route{})
	require.NoError(b, err)
	ev := evilEvent()
	for range 200 {
		ev.People = append(ev.People, event.Person{Name: strings.Repeat("Nâme ", 100)})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := builder.Build(ev); err != nil {
			b.Fatal(err)
		}
	}
}
