package teams

import (
	"strings"
	"testing"

	"github.com/stairhook/stairhook/receiver/event"
)

// FuzzTeamsCard builds cards from arbitrary text in every field: the
// builder never panics, and the message always has the envelope and the
// card a workflow takes, within 28 KB, its text inert.
func FuzzTeamsCard(f *testing.F) {
	f.Add("Churn **x** <at>all</at>", "sum [l](https://e)\n\n# h", "Acme", "https://app.staircase.ai/a?b=c&d=<e>", "Ann", "high", uint8(2), uint16(0), true)
	f.Add(strings.Repeat("é😀", 200), strings.Repeat("\"", 4000), "\u202E", "https://x/"+strings.Repeat("y", 250), "", "", uint8(90), uint16(30000), false)
	f.Add("", "", "", "javascript:alert(1)", "\x00", "\xff", uint8(0), uint16(29000), false)
	builder, err := NewMessageBuilder(Route{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, title, summary, name, link, person, severity string, people uint8, pad uint16, test bool) {
		ev := &event.Event{ID: "evt_" + name, Type: severity, Test: test,
			Account: event.Account{ID: "acc", Name: name, Domain: person, StaircaseURL: link},
			Signal:  event.Signal{Title: title, Summary: summary + strings.Repeat("~", int(pad)%(maxMessageBytes+100)), Severity: severity},
		}
		for i := range int(people) {
			ev.People = append(ev.People, event.Person{Name: person + title[:min(i, len(title))], Title: summary[:min(len(summary), 300)]})
		}
		data, err := builder.Build(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkMessage(data); err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
	})
}
