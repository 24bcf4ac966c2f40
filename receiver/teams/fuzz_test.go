package teams

import (
	"strings"
	"testing"

	"github.com/stairhook/stairhook/receiver/event"
)

// fuzzSeed is one input of FuzzTeamsCard.
type fuzzSeed struct {
	title, summary, name, link, person, severity string
	people                                       uint8
	pad                                          uint16
	test                                         bool
}

var fuzzSeeds = []fuzzSeed{
	{"Churn **x** <at>all</at>", "sum [l](https://e)\n\n# h", "Acme", "https://app.staircase.ai/a?b=c&d=<e>", "Ann", "high", 2, 0, true},
	{strings.Repeat("é😀", 200), strings.Repeat("\"", 4000), "\u202E", "https://x/" + strings.Repeat("y", 250), "", "", 90, 30000, false},
	{"", "", "", "javascript:alert(1)", "\x00", "\xff", 0, 29000, false},
}

// fuzzEvent is the event FuzzTeamsCard builds a card from.
func fuzzEvent(s fuzzSeed) *event.Event {
	ev := &event.Event{ID: "evt_" + s.name, Type: s.severity, Test: s.test,
		Account: event.Account{ID: "acc", Name: s.name, Domain: s.person, StaircaseURL: s.link},
		Signal:  event.Signal{Title: s.title, Summary: s.summary + strings.Repeat("~", int(s.pad)%(maxMessageBytes+100)), Severity: s.severity},
	}
	for i := range int(s.people) {
		ev.People = append(ev.People, event.Person{Name: s.person + s.title[:min(i, len(s.title))], Title: s.summary[:min(len(s.summary), 300)]})
	}
	return ev
}

// FuzzTeamsCard builds cards from arbitrary text in every field: the
// builder never panics, and the message always has the envelope and the
// card a workflow takes, within 28 KB, its text inert. Starting node for
// each input would slow fuzzing a hundredfold, so the adaptivecards parser
// checks the seeds' cards only, in TestFuzzSeedsPassTheParser.
func FuzzTeamsCard(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s.title, s.summary, s.name, s.link, s.person, s.severity, s.people, s.pad, s.test)
	}
	builder, err := NewMessageBuilder(Route{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, title, summary, name, link, person, severity string, people uint8, pad uint16, test bool) {
		data, err := builder.Build(fuzzEvent(fuzzSeed{title, summary, name, link, person, severity, people, pad, test}))
		if err != nil {
			t.Fatal(err)
		}
		if err := checkMessage(data); err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
	})
}

func TestFuzzSeedsPassTheParser(t *testing.T) {
	v := loadValidator(t)
	var msgs [][]byte
	for _, s := range fuzzSeeds {
		msgs = append(msgs, build(t, fuzzEvent(s)))
	}
	v.requireValid(t, msgs...)
}
