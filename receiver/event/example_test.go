package event_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/stairhook/stairhook/receiver/event"
)

func ExampleDecode() {
	body, err := event.Sample(event.TypeChurnRisk)
	if err != nil {
		log.Fatal(err)
	}
	ev, err := event.Decode(body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.Type, ev.Account.Name, ev.Signal.Severity)
	for _, p := range ev.People {
		fmt.Println(p.Name, p.Role)
	}

	_, err = event.Decode([]byte(`{"id":"evt_1","type":"churn_risk"}`))
	fmt.Println(errors.Is(err, event.ErrInvalid), err)
	// Output:
	// churn_risk Acme Corp high
	// Luis Ortega champion
	// Dana Whitfield decision_maker
	// true event: invalid event: missing account.id
}

func ExampleSample() {
	for _, typ := range event.SampleTypes()[:3] {
		body, _ := event.Sample(typ)
		ev, _ := event.Decode(body)
		fmt.Println(ev.ID, ev.Signal.Title)
	}
	// Output:
	// evt_01JD3QX8M2A1B4C6D8E0F2G4H1 New decision-maker joined
	// evt_01JD3QX8M2A1B4C6D8E0F2G4H2 Reorganisation in the support team
	// evt_01JD3QX8M2A1B4C6D8E0F2G4H3 Pricing discussed on a call
}

// Example is a handler's first steps after the verify middleware: decode
// the verified body, then switch on the signal type.
func Example() {
	body, _ := event.Sample(event.TypeRenewal) // in a handler: io.ReadAll(r.Body)
	ev, err := event.Decode(body)
	if err != nil {
		fmt.Println("400:", err) // errors.Is(err, event.ErrInvalid)
		return
	}
	switch ev.Type {
	case event.TypeChurnRisk, event.TypeChurnNotification:
		fmt.Println("page the account team about", ev.Account.Name)
	case event.TypeRenewal:
		fmt.Println("renewal at", ev.Account.Name, "severity", ev.Signal.Severity)
	default:
		fmt.Println("ignored", ev.Type) // unknown types are accepted too
	}
	// Output:
	// renewal at Acme Corp severity medium
}
