package slack

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/stairhook/stairhook/receiver/event"
)

// FuzzSlackMessage builds messages from arbitrary text in every field: the
// builder never panics, and the message always decodes into slack-go's
// types within Slack's limits, its text inert.
func FuzzSlackMessage(f *testing.F) {
	f.Add("Churn <!channel>", "sum & <@U1>\n\n> q", "Acme", "https://app.staircase.ai/a?b=c&d=<e>", "Ann", "high", uint8(2), uint16(0), true)
	f.Add(strings.Repeat("é😀", 200), strings.Repeat("&", 4000), "\u202E", "https://x/"+strings.Repeat("y", 250), "", "", uint8(60), uint16(3000), false)
	f.Add("", "", "", "javascript:alert(1)", "\x00", "\xff", uint8(0), uint16(12000), false)
	builder, err := NewMessageBuilder(Route{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, title, summary, name, link, person, severity string, people uint8, pad uint16, test bool) {
		ev := &event.Event{ID: "evt_" + name, Type: severity, Test: test,
			Account: event.Account{ID: "acc", Name: name, Domain: person, StaircaseURL: link},
			Signal:  event.Signal{Title: title, Summary: summary + strings.Repeat("x", int(pad)%(maxMessageText+100)), Severity: severity},
		}
		for i := range int(people) % (maxBlocks + 5) {
			ev.People = append(ev.People, event.Person{Name: person + title[:min(i, len(title))], Title: summary[:min(len(summary), 300)]})
		}
		data, err := builder.Build(ev)
		if err != nil {
			t.Fatal(err)
		}
		var msg slack.WebhookMessage
		if err := json.Unmarshal(data, &msg); err != nil || msg.Blocks == nil {
			t.Fatalf("does not decode: %v", err)
		}
		if err := checkMessage(msg.Text, msg.Blocks.BlockSet); err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
	})
}
