package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/secreturl"
	"github.com/stairhook/stairhook/receiver/sink"
)

// Outcomes of a delivery, each usable with errors.Is on the error Deliver
// returns (beside sink.ErrPermanent for the permanent ones).
var (
	// ErrRejected means Slack refused the message in a way a retry cannot
	// change: a channel that does not exist or is archived, a revoked
	// token, a missing scope, a deleted webhook, a redirect. The error
	// names Slack's reason, such as channel_not_found, and is permanent.
	ErrRejected = errors.New("slack: message rejected")
	// ErrRateLimited means Slack answered 429. With a Retry-After the
	// error is a *sink.RetryAfterError carrying it, for the queue to wait
	// exactly that long.
	ErrRateLimited = errors.New("slack: rate limited")
	// ErrUnavailable means Slack could not take the message now: a 5xx
	// answer, a timeout, a network failure, an internal_error. Transient.
	ErrUnavailable = errors.New("slack: unavailable")
)

// permanentCodes are the errors of chat.postMessage and of incoming
// webhooks that a retry cannot fix: the configuration or the workspace
// must change first.
var permanentCodes = map[string]bool{
	// The channel.
	"channel_not_found": true, "not_in_channel": true, "is_archived": true, "channel_is_archived": true,
	"restricted_action": true, "restricted_action_read_only_channel": true,
	"restricted_action_thread_only_channel": true, "restricted_action_non_threadable_channel": true,
	"posting_to_general_channel_denied": true, "action_prohibited": true, "ekm_access_denied": true,
	"team_access_not_granted": true, "access_denied": true,
	// The credentials.
	"invalid_auth": true, "not_authed": true, "account_inactive": true, "token_revoked": true,
	"token_expired": true, "no_permission": true, "missing_scope": true, "not_allowed_token_type": true,
	"invalid_token": true, "two_factor_setup_required": true, "enterprise_is_restricted": true,
	// An incoming webhook that is gone.
	"no_service": true, "no_service_id": true, "no_team": true, "team_disabled": true, "user_not_found": true,
	// The message itself, which the same event and route would build again.
	"invalid_blocks": true, "invalid_blocks_format": true, "msg_too_long": true, "msg_blocks_too_long": true,
	"no_text": true, "too_many_attachments": true, "invalid_payload": true, "invalid_arguments": true,
	"invalid_arg_name": true, "invalid_charset": true, "invalid_form_data": true, "invalid_post_type": true,
	"missing_post_type": true, "as_user_not_supported": true, "deprecated_endpoint": true,
	"method_deprecated": true,
}

// transientCodes are the errors that say Slack failed or is busy; any code
// in neither list is treated as transient too, so the queue retries it
// until delivery.give_up_after, then keeps it as a dead letter.
var transientCodes = map[string]bool{
	"internal_error": true, "fatal_error": true, "service_unavailable": true, "request_timeout": true,
	"ratelimited": true, "rate_limited": true, "message_limit_exceeded": true, "team_added_to_org": true,
}

// errorCode is the shape of the error codes Slack answers with; nothing
// else an answer holds is ever quoted.
var errorCode = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

const (
	// maxResponseBody bounds what is read of any answer.
	maxResponseBody = 64 << 10
	// maxErrorBody bounds what is kept of a failed webhook answer, whose
	// text is Slack's error code.
	maxErrorBody = 256
)

// Sink posts one Slack message per event, through an incoming webhook or
// with a bot token. Slack has no idempotency key: an attempt whose answer
// was lost (a timeout after Slack took the message) is retried by the
// queue and posts the message again.
type Sink struct {
	name    string
	builder *MessageBuilder
	channel string
	webhook string // the incoming webhook (a secret), or ""
	api     *slack.Client
	client  *http.Client
	timeout time.Duration
	target  string // where messages go, for errors and logs: no secret
	secrets []string
	log     *slog.Logger
}

// New returns the sink named name that posts the messages of route to the
// workspace of cfg, or the problems of cfg (with the config path "slack")
// or of route. Its requests go through a copy of client (nil means a zero
// http.Client) that never follows a redirect and reads at most 64 KiB of an
// answer; log (nil discards) gets a line per message posted.
func New(name string, cfg Config, route Route, client *http.Client, log *slog.Logger) (*Sink, error) {
	errs := cfg.Check("slack")
	errs = append(errs, cfg.CheckRoute("", &route)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	b, err := NewMessageBuilder(route)
	if err != nil {
		return nil, err
	}
	c := http.Client{}
	if client != nil {
		c = *client
	}
	// A redirect would send the message, and a token, elsewhere: it is
	// answered as a permanent failure instead (see classify).
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.Transport = &answerTransport{base: c.Transport}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	s := &Sink{name: name, builder: b, channel: route.Channel, client: &c, timeout: timeout, log: log}
	if cfg.WebhookURL != "" {
		s.webhook = cfg.WebhookURL
		s.target = "incoming webhook " + secreturl.Host(cfg.WebhookURL)
		s.secrets = secreturl.Forms(cfg.WebhookURL)
	} else {
		apiURL := cfg.APIURL
		if apiURL == "" {
			apiURL = defaultAPIURL
		}
		if !strings.HasSuffix(apiURL, "/") {
			apiURL += "/"
		}
		s.api = slack.New(cfg.Token, slack.OptionHTTPClient(&c), slack.OptionAPIURL(apiURL))
		s.target = "chat.postMessage to " + route.Channel
		s.secrets = []string{cfg.Token}
	}
	return s, nil
}

// Name returns the sink's name, as given to New.
func (s *Sink) Name() string { return s.name }

// Deliver posts the message for ev. See the package documentation for how
// Slack's answers are classified.
func (s *Sink) Deliver(ctx context.Context, ev *event.Event) error {
	msg, err := s.builder.Message(ev)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ans := &answer{}
	ctx = context.WithValue(ctx, answerKey{}, ans)
	var ts string
	if s.webhook != "" {
		err = slack.PostWebhookCustomHTTPContext(ctx, s.webhook, s.client, msg)
	} else {
		_, ts, err = s.api.PostMessageContext(ctx, s.channel,
			slack.MsgOptionText(msg.Text, false),
			slack.MsgOptionBlocks(msg.Blocks.BlockSet...),
			slack.MsgOptionDisableLinkUnfurl(),
			slack.MsgOptionDisableMediaUnfurl(),
		)
	}
	if err != nil {
		return s.classify(err, ans)
	}
	s.log.InfoContext(ctx, "slack message posted", "sink", s.name, "event_id", ev.ID, "to", s.target, "ts", ts)
	return nil
}

// classify turns a failed post into the sink's outcome. ans is what the
// transport saw of Slack's answer, when there was one: slack-go keeps
// neither an incoming webhook's error text nor a Retry-After it cannot
// parse.
func (s *Sink) classify(err error, ans *answer) error {
	var rl *slack.RateLimitedError
	var se slack.SlackErrorResponse
	switch {
	case errors.As(err, &rl) || ans.status == http.StatusTooManyRequests:
		after := sink.RetryAfter(ans.header, time.Now())
		if rl != nil && after == 0 {
			after = min(rl.RetryAfter, sink.MaxRetryAfter)
		}
		e := sink.Classed("slack 429", fmt.Errorf("%w: %s: 429 Too Many Requests", ErrRateLimited, s.target))
		if after > 0 {
			return &sink.RetryAfterError{Err: e, After: after}
		}
		return e
	case ans.status >= 300 && ans.status < 400:
		return sink.Permanent(sink.Classed("slack "+strconv.Itoa(ans.status),
			fmt.Errorf("%w: %s: %d %s: the answer is a redirect, which is not followed; check the webhook URL or api_url",
				ErrRejected, s.target, ans.status, http.StatusText(ans.status))))
	case ans.status >= 500 || ans.status == http.StatusRequestTimeout:
		e := sink.Classed("slack "+strconv.Itoa(ans.status),
			fmt.Errorf("%w: %s: %d %s", ErrUnavailable, s.target, ans.status, http.StatusText(ans.status)))
		if after := sink.RetryAfter(ans.header, time.Now()); after > 0 {
			return &sink.RetryAfterError{Err: e, After: after}
		}
		return e
	case ans.status >= 400:
		// An incoming webhook answers its errors as 4xx with the code as
		// the body; chat.postMessage answers 200 with ok:false.
		code := codeOf(ans.body)
		reason := strconv.Itoa(ans.status) + " " + http.StatusText(ans.status)
		if code != "" {
			reason += ": " + code
		}
		return sink.Permanent(sink.Classed(classOf(code, ans.status),
			fmt.Errorf("%w: %s: %s", ErrRejected, s.target, reason)))
	case errors.As(err, &se):
		code := codeOf(se.Err)
		if code == "" {
			code = "unknown_error"
		}
		if permanentCodes[code] {
			return sink.Permanent(sink.Classed("slack "+code, fmt.Errorf("%w: %s: %s", ErrRejected, s.target, code)))
		}
		return sink.Classed(classOf(code, 0), fmt.Errorf("%w: %s: %s", ErrUnavailable, s.target, code))
	default:
		// A network failure, a timeout, an answer that did not decode.
		return sink.Classed("slack network", fmt.Errorf("%w: %s: %w", ErrUnavailable, s.target, s.scrub(err)))
	}
}

// classOf is the reason class of an error code: "slack <code>" for the
// codes this package knows (fixed texts), else "slack <status>".
func classOf(code string, status int) string {
	if permanentCodes[code] || transientCodes[code] {
		return "slack " + code
	}
	if status > 0 {
		return "slack " + strconv.Itoa(status)
	}
	return "slack error"
}

// codeOf returns s when it has the shape of a Slack error code, else "".
func codeOf(s string) string {
	s = strings.TrimSpace(s)
	if errorCode.MatchString(s) {
		return s
	}
	return ""
}

// scrub removes the secrets from err (see secreturl.Scrub). The token
// never reaches a URL (slack-go posts it in the form body).
func (s *Sink) scrub(err error) error { return secreturl.Scrub(err, s.secrets) }

// answer is what answerTransport saw of Slack's answer to one request.
type answer struct {
	status int
	header http.Header
	body   string // the start of a failed answer's body
}

type answerKey struct{}

// answerTransport bounds every answer's body to maxResponseBody and, for
// a request whose context carries an *answer, records the status, the
// Retry-After and the start of the body of a failed answer: the parts of
// Slack's answer that slack-go does not pass on.
type answerTransport struct {
	base http.RoundTripper
}

func (t *answerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body := io.Reader(io.LimitReader(resp.Body, maxResponseBody))
	if ans, ok := req.Context().Value(answerKey{}).(*answer); ok {
		ans.status = resp.StatusCode
		ans.header = resp.Header
		if resp.StatusCode != http.StatusOK {
			head, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			ans.body = string(head)
			body = io.MultiReader(bytes.NewReader(head), io.LimitReader(resp.Body, maxResponseBody-int64(len(head))))
		}
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{body, resp.Body}
	return resp, nil
}
