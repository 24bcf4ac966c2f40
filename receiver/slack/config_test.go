package slack

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func messages(errs []error) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func TestConfigCheck(t *testing.T) {
	assert.Empty(t, (&Config{WebhookURL: "https://hooks.slack.com/services/T/B/x"}).Check("slack"))
	assert.Empty(t, (&Config{Token: "xoxb-1-2-abc", APIURL: "https://slack-gov.com/api/"}).Check("slack"))
	assert.Empty(t, (&Config{WebhookURL: "http://127.0.0.1:9/services/x"}).Check("slack"), "loopback test server")

	cases := []struct {
		cfg  Config
		want []string
	}{
		{Config{}, []string{"slack.webhook_url: set webhook_url (an incoming webhook) or token (a bot token)"}},
		{Config{WebhookURL: "https://hooks.slack.com/services/SECRET1", Token: "xoxb-SECRET2"}, []string{"slack.token: set webhook_url or token, not both"}},
		{Config{WebhookURL: "http://hooks.slack.com/services/SECRET1"}, []string{"slack.webhook_url: must be https (http only for a loopback test server)"}},
		{Config{WebhookURL: "hooks.slack.com/services/SECRET1"}, []string{"slack.webhook_url: must be an absolute https URL"}},
		{Config{WebhookURL: "https://u:SECRET1@hooks.slack.com/x"}, []string{"slack.webhook_url: must not carry credentials or a fragment"}},
		{Config{Token: "SECRET2"}, []string{"slack.token: must be a Slack token such as a bot token (xoxb-…)"}},
		{Config{Token: "xoxb-SECRET2\n"}, []string{"slack.token: must be a Slack token such as a bot token (xoxb-…)"}},
		{Config{WebhookURL: "https://hooks.slack.com/services/SECRET1", APIURL: "https://slack.com/api/"}, []string{"slack.api_url: only used with token"}},
		{Config{Token: "xoxb-SECRET2", APIURL: "http://slack.example/api/", Timeout: -1},
			[]string{"slack.api_url: must be https (http only for a loopback test server)", "slack.timeout: must not be negative"}},
	}
	for _, tc := range cases {
		got := messages(tc.cfg.Check("slack"))
		assert.Equal(t, tc.want, got)
		assert.NotContains(t, strings.Join(got, "\n"), "SECRET", "secrets are never quoted")
	}
}

func TestConfigCheckRoute(t *testing.T) {
	token := &Config{Token: "xoxb-1"}
	hook := &Config{WebhookURL: "https://hooks.slack.com/services/x"}
	assert.Empty(t, token.CheckRoute("r", &Route{Channel: "#a"}))
	assert.Empty(t, hook.CheckRoute("r", &Route{}))
	assert.Equal(t, []string{"webhooks[0].routes[1].slack.channel: required with a bot token (slack.token)"},
		messages(token.CheckRoute("webhooks[0].routes[1].slack", &Route{})))
	assert.Equal(t, []string{"r.channel: not used with an incoming webhook (slack.webhook_url), which posts to the channel it was made for; leave it out"},
		messages(hook.CheckRoute("r", &Route{Channel: "#a"})))
}

func TestRouteCheck(t *testing.T) {
	for _, ch := range []string{"", "#cs-alerts", "#ventes_été", "#a.b", "C0123456789", "G01234567"} {
		assert.Empty(t, (&Route{Channel: ch}).Check("r"), ch)
	}
	for _, ch := range []string{"cs-alerts", "#CS", "#a b", "#", "#a\n", "c0123456789", "#" + strings.Repeat("a", 81)} {
		assert.Equal(t, []string{"r.channel: must be #name (lower case, no spaces) or a channel id such as C0123456789"},
			messages((&Route{Channel: ch}).Check("r")), ch)
	}
	got := messages((&Route{Title: "{{.Nope}}", Text: "{{"}).Check("webhooks[0].routes[0].slack"))
	require.Len(t, got, 2)
	assert.Regexp(t, `^webhooks\[0\]\.routes\[0\]\.slack\.title: .*Nope`, got[0])
	assert.Regexp(t, `^webhooks\[0\]\.routes\[0\]\.slack\.text: `, got[1])
	_, err := NewMessageBuilder(Route{Channel: "bad"})
	require.ErrorContains(t, err, "channel: must be")
}
