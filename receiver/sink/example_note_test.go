package sink_test

import (
	"context"
	"fmt"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/sink"
)

// ticketSink files a ticket per event and notes its number.
type ticketSink struct{}

func (ticketSink) Name() string { return "tickets" }

func (ticketSink) Deliver(ctx context.Context, ev *event.Event) error {
	number := "T-" + ev.ID // what the destination answered
	sink.Note(ctx, "ticket", number)
	return nil
}

// The receiver calls a sink with WithNotes and keeps what it notes; a
// caller that does not is not told, and the sink works the same.
func ExampleNote() {
	var s sink.Sink = ticketSink{}
	ctx := sink.WithNotes(context.Background(), func(key, value string) {
		fmt.Printf("%s = %s\n", key, value)
	})
	_ = s.Deliver(ctx, &event.Event{ID: "evt_1"})
	_ = s.Deliver(context.Background(), &event.Event{ID: "evt_2"})
	// Output:
	// ticket = T-evt_1
}
