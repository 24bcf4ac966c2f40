package teams_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/teams"
)

// The dry run writes Build's JSON; the sink posts the same bytes.
func ExampleMessageBuilder_Build() {
	b, err := teams.NewMessageBuilder(teams.Route{})
	if err != nil {
		panic(err)
	}
	ev := &event.Event{
		ID: "evt_1", Type: event.TypeChurnRisk,
		Account: event.Account{ID: "acc_1", Name: "Acme **Corp**", StaircaseURL: "https://app.staircase.ai/accounts/acc_1"},
		Signal:  event.Signal{Title: "Churn risk detected", Severity: "high", Summary: "Support tickets doubled."},
	}
	data, err := b.Build(ev)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(data))
	// Output:
	// {"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":{"$schema":"http://adaptivecards.io/schemas/adaptive-card.json","type":"AdaptiveCard","version":"1.5","fallbackText":"Churn risk detected (high) (Acme **Corp**)","body":[{"type":"RichTextBlock","inlines":[{"type":"TextRun","text":"Churn risk detected (high)","weight":"bolder","size":"large"}]},{"type":"RichTextBlock","inlines":[{"type":"TextRun","text":"Account: ","weight":"bolder"},{"type":"TextRun","text":"Acme **Corp**","selectAction":{"type":"Action.OpenUrl","url":"https://app.staircase.ai/accounts/acc_1"}}]},{"type":"RichTextBlock","inlines":[{"type":"TextRun","text":"Severity: ","weight":"bolder"},{"type":"TextRun","text":"high"}]},{"type":"RichTextBlock","inlines":[{"type":"TextRun","text":"Type: ","weight":"bolder"},{"type":"TextRun","text":"churn_risk"}]},{"type":"RichTextBlock","inlines":[{"type":"TextRun","text":"Support tickets doubled."}],"separator":true},{"type":"RichTextBlock","inlines":[{"type":"TextRun","text":"Staircase event evt_1","size":"small","isSubtle":true}]}],"actions":[{"type":"Action.OpenUrl","title":"Open in Staircase","url":"https://app.staircase.ai/accounts/acc_1"}]}}]}
}

// A sink posts to the workflow of the route (or of the Config); the
// receiver's queue calls its Deliver for each event.
func ExampleNew() {
	s, err := teams.New("staircase.alerts.teams",
		teams.Config{WebhookURL: os.Getenv("TEAMS_WEBHOOK_URL")},
		teams.Route{},
		http.DefaultClient, slog.Default())
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = s // give it to receiver.ServerOptions.Sinks, or let the config build it
}
