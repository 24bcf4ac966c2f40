package slack

import (
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/stairhook/stairhook/receiver/internal/render"
	"github.com/stairhook/stairhook/receiver/internal/secreturl"
)

// Config is the Slack workspace the slack routes post to: an incoming
// webhook or a bot token, exactly one of them. Without it, slack routes
// write their messages to the outbox instead (dry run).
type Config struct {
	// WebhookURL is an incoming webhook, "https://hooks.slack.com/services/…",
	// which posts to the one channel it was made for. It is a secret: it
	// is never logged nor quoted in an error, which names its host only.
	// It must be https (http only for a loopback test server).
	WebhookURL string `yaml:"webhook_url"`
	// Token is a bot token ("xoxb-…") with the chat:write scope, for
	// chat.postMessage to the channel each route names. It is a secret,
	// never logged nor quoted.
	Token string `yaml:"token"`
	// APIURL is the Web API a Token is sent to. Default
	// "https://slack.com/api/"; GovSlack is "https://slack-gov.com/api/".
	// It must be https (http only for a loopback test server), and is only
	// used with Token.
	APIURL string `yaml:"api_url"`
	// Timeout bounds each HTTP request. Default 10 s.
	Timeout time.Duration `yaml:"timeout"`
}

// Route says how one route turns an event into a Slack message.
type Route struct {
	// Channel is where a bot token posts: "#name" or a channel id such as
	// "C0123456789". Required with Config.Token; an incoming webhook posts
	// to its own channel, so with Config.WebhookURL it must be left out.
	Channel string `yaml:"channel"`
	// Title is the header, a text/template over the event.Event (default
	// DefaultTitle), shown as plain text: made one line and cut to 150
	// characters; test events get the "[TEST] " prefix whatever the
	// template says.
	Title string `yaml:"title"`
	// Text is the body under the account, a text/template over the
	// event.Event (default DefaultText) whose output is Slack mrkdwn: what
	// the template writes itself (*bold*, <https://…|links>) is markup,
	// while every string of the event reaches it with &, < and > escaped,
	// so payload text never becomes a link or a mention. Long output is
	// split into sections and, past the message's limits, cut.
	Text string `yaml:"text"`
}

// Default templates of a slack route.
const (
	DefaultTitle = "{{.Signal.Title}}{{with .Signal.Severity}} ({{.}}){{end}}"
	DefaultText  = "{{.Signal.Summary}}"
)

const (
	defaultAPIURL  = "https://slack.com/api/"
	defaultTimeout = 10 * time.Second
)

// channelName is the shape of Route.Channel: "#" and a channel name
// (lower-case letters, digits, "-", "_" and "." up to 80 characters), or a
// channel id.
var channelName = regexp.MustCompile(`^(#[\p{Ll}\p{Lo}\p{N}_.\-]{1,80}|[CGD][A-Z0-9]{8,20})$`)

// Check reports every problem of c, each error naming its field under
// path, such as "slack.webhook_url: must be an https URL". It never
// quotes the webhook URL or the token.
func (c *Config) Check(path string) []error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, render.FieldError(path, field, msg)) }
	switch {
	case c.WebhookURL == "" && c.Token == "":
		bad("webhook_url", "set webhook_url (an incoming webhook) or token (a bot token)")
	case c.WebhookURL != "" && c.Token != "":
		bad("token", "set webhook_url or token, not both")
	}
	if c.WebhookURL != "" {
		if err := secreturl.Check(c.WebhookURL); err != nil {
			bad("webhook_url", err.Error())
		}
	}
	if c.Token != "" && (!strings.HasPrefix(c.Token, "xox") || strings.ContainsFunc(c.Token, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII
	})) {
		bad("token", "must be a Slack token such as a bot token (xoxb-…)")
	}
	if c.APIURL != "" {
		if c.Token == "" {
			bad("api_url", "only used with token")
		} else if err := secreturl.Check(c.APIURL); err != nil {
			bad("api_url", err.Error())
		}
	}
	if c.Timeout < 0 {
		bad("timeout", "must not be negative")
	}
	return errs
}

// CheckRoute reports the problems of r under c that Route.Check cannot
// see alone: a bot token needs the route's channel, and an incoming
// webhook, which posts to its own channel, takes none.
func (c *Config) CheckRoute(path string, r *Route) []error {
	switch {
	case c.Token != "" && r.Channel == "":
		return []error{render.FieldError(path, "channel", "required with a bot token (slack.token)")}
	case c.WebhookURL != "" && r.Channel != "":
		return []error{render.FieldError(path, "channel", "not used with an incoming webhook (slack.webhook_url), which posts to the channel it was made for; leave it out")}
	}
	return nil
}

// Check reports every problem of r, each error naming its field under
// path, such as "webhooks[0].routes[1].slack.channel: …". A template that
// does not parse, or names a field the event does not have, is reported
// with the parser's message, which quotes the template.
func (r *Route) Check(path string) []error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, render.FieldError(path, field, msg)) }
	if r.Channel != "" && !channelName.MatchString(r.Channel) {
		bad("channel", "must be #name (lower case, no spaces) or a channel id such as C0123456789")
	}
	if _, err := render.ParseText("title", render.OrDefault(r.Title, DefaultTitle)); err != nil {
		bad("title", err.Error())
	}
	if _, err := render.ParseText("text", render.OrDefault(r.Text, DefaultText)); err != nil {
		bad("text", err.Error())
	}
	return errs
}
