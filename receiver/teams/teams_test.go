package teams

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
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
	wf   *standIn
	sink *Sink
	logs *bytes.Buffer
}

// newFixture is a sink posting to a stand-in, which validates cards with
// the adaptivecards parser when given it.
func newFixture(t *testing.T, cards *cardValidator) *fixture {
	t.Helper()
	wf := newStandIn(t, cards)
	logs := &bytes.Buffer{}
	s, err := New("staircase.route1.teams", Config{WebhookURL: wf.url(), Timeout: 5 * time.Second}, Route{}, nil,
		slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	return &fixture{wf: wf, sink: s, logs: logs}
}

// assertNoSecret fails when text holds any part of the workflow URL that
// makes it a secret.
func assertNoSecret(t *testing.T, text string) {
	t.Helper()
	for _, secret := range []string{testSig, "sig=", testWorkflowPath, "0f2c7e3a9b1d4c6e8f0a2b4c6d8e0f1a", "api-version"} {
		assert.NotContains(t, text, secret)
	}
}

func TestTeamsPostsTheBuiltCard(t *testing.T) {
	f := newFixture(t, loadValidator(t))
	ev := evilEvent()
	require.NoError(t, f.sink.Deliver(sinktest.Context(t), ev))
	posts := f.wf.accepted()
	require.Len(t, posts, 1)
	want, err := f.sink.builder.Build(ev)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(posts[0]), "the dry run's bytes are what is posted")
	assert.Contains(t, f.logs.String(), "teams card posted")
	assert.Contains(t, f.logs.String(), "status=202")
	assertNoSecret(t, f.logs.String())
}

// A route's webhook URL replaces the configured one.
func TestTeamsRouteOverridesTheURL(t *testing.T) {
	wf := newStandIn(t, optionalValidator(t))
	other := newStandIn(t, nil)
	s, err := New("s", Config{WebhookURL: other.url()}, Route{WebhookURL: wf.url()}, nil, nil)
	require.NoError(t, err)
	require.NoError(t, s.Deliver(sinktest.Context(t), sinktest.HostileEvent()))
	assert.Len(t, wf.accepted(), 1)
	assert.Zero(t, other.requests())

	s, err = New("s", Config{}, Route{WebhookURL: wf.url()}, nil, nil)
	require.NoError(t, err, "no configured URL: the route's is enough")
	_, err = New("s", Config{}, Route{}, nil, nil)
	require.EqualError(t, err, "webhook_url: required: set teams.webhook_url, or this route's webhook_url")
	assert.Equal(t, "s", s.Name())
}

func TestTeamsAnswers(t *testing.T) {
	cases := []struct {
		name      string
		fault     fault
		permanent bool
		sentinel  error
		text      string
		after     time.Duration // a *sink.RetryAfterError with this delay, when > 0
	}{
		{"429 with Retry-After", fault{status: 429, retryAfter: "7"}, false, ErrRateLimited, "429 Too Many Requests", 7 * time.Second},
		{"429 with a date", fault{status: 429, retryAfter: time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)}, false, ErrRateLimited, "429", 90 * time.Second},
		{"429 too long", fault{status: 429, retryAfter: "86400"}, false, ErrRateLimited, "429", time.Hour},
		{"429 without Retry-After", fault{status: 429}, false, ErrRateLimited, "429 Too Many Requests", 0},
		{"500", fault{status: 500, body: "<html>oops</html>"}, false, ErrUnavailable, "500 Internal Server Error", 0},
		{"502", fault{status: 502}, false, ErrUnavailable, "502 Bad Gateway", 0},
		{"503 with Retry-After", fault{status: 503, retryAfter: "30"}, false, ErrUnavailable, "503 Service Unavailable", 30 * time.Second},
		{"504", fault{status: 504}, false, ErrUnavailable, "504 Gateway Timeout", 0},
		{"408", fault{status: 408}, false, ErrUnavailable, "408 Request Timeout", 0},
		{"400 with a code", fault{status: 400, body: `{"error":{"code":"InvalidRequestContent","message":"card: ` + testSig + `"}}`}, true, ErrRejected, "400 Bad Request: InvalidRequestContent", 0},
		{"401", fault{status: 401, body: `{"error":{"code":"DirectApiAuthorizationRequired"}}`}, true, ErrRejected, "401 Unauthorized: DirectApiAuthorizationRequired", 0},
		{"403", fault{status: 403}, true, ErrRejected, "403 Forbidden", 0},
		{"404 disabled workflow", fault{status: 404, body: `{"error":{"code":"WorkflowTriggerIsNotEnabled"}}`}, true, ErrRejected, "404 Not Found: WorkflowTriggerIsNotEnabled", 0},
		{"413", fault{status: 413}, true, ErrRejected, "413 Request Entity Too Large", 0},
		{"400 with a code that is not one", fault{status: 400, body: `{"error":{"code":"sig=` + testSig + ` <b>"}}`}, true, ErrRejected, "400 Bad Request", 0},
		{"302", fault{status: 302, location: "https://evil.example/"}, true, ErrRejected, "302 Found: the answer is a redirect, which is not followed", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, optionalValidator(t))
			f.wf.inject(tc.fault)
			ev := sinktest.HostileEvent()
			err := f.sink.Deliver(sinktest.Context(t), ev)
			require.Error(t, err)
			assert.Equal(t, tc.permanent, errors.Is(err, sink.ErrPermanent), "%v", err)
			assert.ErrorIs(t, err, tc.sentinel)
			assert.Contains(t, err.Error(), tc.text)
			assert.Equal(t, "teams "+strings.Fields(tc.name)[0], sink.ReasonClass(err))
			assert.NotContains(t, err.Error(), "<")
			assertNoSecret(t, err.Error())
			var ra *sink.RetryAfterError
			if tc.after > 0 {
				require.ErrorAs(t, err, &ra)
				assert.InDelta(t, tc.after.Seconds(), ra.After.Seconds(), 2)
			} else {
				assert.False(t, errors.As(err, &ra))
			}
			assert.Equal(t, 1, f.wf.requests(), "one request: no redirect followed, no retry inside the sink")
			if !tc.permanent {
				require.NoError(t, f.sink.Deliver(sinktest.Context(t), ev), "the queue's retry posts")
				assert.Len(t, f.wf.accepted(), 1)
			}
		})
	}
}

// A network failure names the workflow's host, never its URL: net/http's
// *url.Error quotes the whole URL, sig included.
func TestTeamsNetworkErrorsHideTheURL(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	logs := &bytes.Buffer{}
	s, err := New("s", Config{WebhookURL: "http://" + addr + testWorkflowPath + "?" + testQuery, Timeout: 2 * time.Second}, Route{}, nil,
		slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, err)
	err = s.Deliver(sinktest.Context(t), sinktest.HostileEvent())
	require.ErrorIs(t, err, ErrUnavailable)
	assert.NotErrorIs(t, err, sink.ErrPermanent)
	assert.Contains(t, err.Error(), `Post "http://`+addr+`/…": dial tcp`)
	assert.Equal(t, "teams network", sink.ReasonClass(err))
	assertNoSecret(t, err.Error())
	assertNoSecret(t, logs.String())

	f := newFixture(t, nil)
	f.wf.hang = make(chan struct{})
	defer close(f.wf.hang)
	f.sink.timeout = 200 * time.Millisecond
	err = f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent())
	require.ErrorIs(t, err, ErrUnavailable)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assertNoSecret(t, err.Error())
}

func TestTeamsScrub(t *testing.T) {
	f := newFixture(t, nil)
	leaky := errors.Join(context.Canceled, errors.New("proxy: "+testSig+" and "+testWorkflowPath))
	err := f.sink.scrub(leaky)
	assertNoSecret(t, err.Error())
	assert.ErrorIs(t, err, context.Canceled)
	clean := errors.New("refused")
	assert.Same(t, clean, f.sink.scrub(clean))
}

func TestTeamsDeliverHonoursContext(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := f.sink.Deliver(ctx, sinktest.HostileEvent())
	require.ErrorIs(t, err, ErrUnavailable)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, f.wf.accepted())
}

func TestConfigCheck(t *testing.T) {
	assert.Empty(t, (&Config{}).Check("teams"))
	assert.Empty(t, (&Config{WebhookURL: "https://x.environment.api.powerplatform.com/powerautomate/a?sig=SECRET"}).Check("teams"))
	for u, want := range map[string]string{
		"http://prod.logic.azure.com/workflows/x?sig=SECRET": "teams.webhook_url: must be https (http only for a loopback test server)",
		"prod.logic.azure.com/workflows/x?sig=SECRET":        "teams.webhook_url: must be an absolute https URL",
		"https://u:SECRET@prod.logic.azure.com/x":            "teams.webhook_url: must not carry credentials or a fragment",
		"https://prod.logic.azure.com/x?sig=SECRET#frag":     "teams.webhook_url: must not carry credentials or a fragment",
		"https://prod.logic.azure.com:bad/x?sig=SECRET":      "teams.webhook_url: must be an absolute https URL",
	} {
		errs := (&Config{WebhookURL: u}).Check("teams")
		require.Len(t, errs, 1, u)
		assert.EqualError(t, errs[0], want)
		assert.NotContains(t, errs[0].Error(), "SECRET")
	}
	assert.EqualError(t, (&Config{Timeout: -1}).Check("teams")[0], "teams.timeout: must not be negative")
	assert.Empty(t, (&Config{}).CheckRoute("r", &Route{WebhookURL: "https://a.example/x"}))
	assert.Empty(t, (&Config{WebhookURL: "https://a.example/x"}).CheckRoute("r", &Route{}))
	assert.EqualError(t, (&Config{}).CheckRoute("webhooks[0].routes[2].teams", &Route{})[0],
		"webhooks[0].routes[2].teams.webhook_url: required: set teams.webhook_url, or this route's webhook_url")
	assert.EqualError(t, (&Route{WebhookURL: "ftp://a.example/?sig=SECRET"}).Check("r")[0], "r.webhook_url: must be an absolute https URL")
}

func BenchmarkTeamsBuild(b *testing.B) {
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

// BenchmarkTeamsBuildOversized is the worst case: a card far past 28 KB,
// fitted by bisection.
func BenchmarkTeamsBuildOversized(b *testing.B) {
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
