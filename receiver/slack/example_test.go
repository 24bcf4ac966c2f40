package slack_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/slack"
)

// The dry run writes Build's JSON; the sink posts the same message.
func ExampleMessageBuilder_Build() {
	b, err := slack.NewMessageBuilder(slack.Route{Channel: "#cs-alerts"})
	if err != nil {
		panic(err)
	}
	ev := &event.Event{
		ID: "evt_1", Type: event.TypeChurnRisk,
		Account: event.Account{ID: "acc_1", Name: "Acme <Corp>", StaircaseURL: "https://app.staircase.ai/accounts/acc_1"},
		Signal:  event.Signal{Title: "Churn risk detected", Severity: "high", Summary: "Ping <!channel> & co."},
	}
	data, err := b.Build(ev)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(data))
	// Output:
	// {"channel":"#cs-alerts","text":"Churn risk detected (high) (Acme \u0026lt;Corp\u0026gt;)","blocks":[{"type":"header","text":{"type":"plain_text","text":"Churn risk detected (high)","emoji":false}},{"type":"section","text":{"type":"mrkdwn","text":"*Account:* \u003chttps://app.staircase.ai/accounts/acc_1|Acme \u0026lt;Corp\u0026gt;\u003e","verbatim":true},"fields":[{"type":"mrkdwn","text":"*Severity*\nhigh","verbatim":true},{"type":"mrkdwn","text":"*Type*\nchurn_risk","verbatim":true}]},{"type":"section","text":{"type":"mrkdwn","text":"Ping \u0026lt;!channel\u0026gt; \u0026amp; co.","verbatim":true}},{"type":"context","elements":[{"type":"mrkdwn","text":"Staircase event evt_1","verbatim":true}]}],"replace_original":false,"delete_original":false,"unfurl_links":false,"unfurl_media":false}
}

// A sink posts through an incoming webhook (or, with Config.Token, to a
// route's channel with chat.postMessage); the receiver's queue calls its
// Deliver for each event.
func ExampleNew() {
	s, err := slack.New("staircase.alerts.slack",
		slack.Config{WebhookURL: os.Getenv("SLACK_WEBHOOK_URL"), Timeout: 10 * time.Second},
		slack.Route{Title: "{{.Signal.Title}} · {{.Account.Name}}"},
		http.DefaultClient, slog.Default())
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = s // give it to receiver.ServerOptions.Sinks, or let the config build it
}
