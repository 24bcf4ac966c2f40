package sinktest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/event"
)

// ChatEvents are the events the builder tests of the chat sinks (packages
// slack and teams) render: every sample payload of package event
// ("sample/<type>"), with each sample's type a HostileEvent
// ("hostile/<type>") and an event from evil, the sink's own worst case
// ("evil/<type>"); sparse and blank ones; and a HostileEvent with 200 long
// people ("200-long-people"). Each call returns new events.
func ChatEvents(t testing.TB, evil func() *event.Event) map[string]*event.Event {
	t.Helper()
	events := map[string]*event.Event{}
	for _, typ := range event.SampleTypes() {
		data, err := event.Sample(typ)
		require.NoError(t, err)
		ev, err := event.Decode(data)
		require.NoError(t, err, typ)
		events["sample/"+typ] = ev
		h := HostileEvent()
		h.Type = typ
		events["hostile/"+typ] = h
		e := evil()
		e.Type = typ
		events["evil/"+typ] = e
	}
	events["sparse"] = &event.Event{ID: "evt_sparse", Type: "something_new", Account: event.Account{ID: "acc_1"}}
	events["empty"] = &event.Event{}
	events["blank-strings"] = &event.Event{
		ID: "evt_blank", Type: event.TypeRenewal, Test: true,
		Account: event.Account{ID: "acc_2", Name: "  ", StaircaseURL: "javascript:alert(1)"},
		Signal:  event.Signal{Title: "\n\n", Summary: "\r\n \r\n", Severity: ""},
		People:  []event.Person{{}, {Name: "\n"}, {Title: "CFO"}},
	}
	many := HostileEvent()
	many.People = nil
	for range 200 {
		many.People = append(many.People, event.Person{Name: strings.Repeat("Nâme ", 100), Title: strings.Repeat("<b>&", 100)})
	}
	events["200-long-people"] = many
	return events
}
