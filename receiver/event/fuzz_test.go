package event

import (
	"encoding/json"
	"errors"
	"testing"
)

func FuzzDecode(f *testing.F) {
	for _, typ := range SampleTypes() {
		body, err := Sample(typ)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	for _, s := range []string{minimalEvent, `{}`, `[]`, `null`, `{"id":"e","type":"t","account":{"id":"a"},"people":[{}]}`,
		withField(`"deep":` + nested(maxDepth-1)), `{"id":"\u0000"}`, `{"a":"\"[[[["}`,
		`{"ID":"evt_1","TYPE":"renewal","Account":{"Id":"a"}}`, withField(`"created_at":"x","signal":{"detected_at":5}`)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := Decode(body)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			if ev != nil {
				t.Fatal("event with an error")
			}
			return
		}
		// Whatever is accepted meets the documented bounds.
		if ev.ID == "" || len(ev.ID) > maxIDLen || ev.Type == "" || len(ev.Type) > maxTypeLen || ev.Account.ID == "" || len(ev.People) > maxPeople {
			t.Fatalf("accepted out of bounds: %q %q %q %d", ev.ID, ev.Type, ev.Account.ID, len(ev.People))
		}
		if string(ev.Raw) != string(body) || ev.Fields == nil {
			t.Fatal("Raw or Fields not kept")
		}
		if !json.Valid(body) {
			t.Fatal("accepted invalid JSON")
		}
		// The typed fields come from the exact keys, so they agree with
		// Fields, as any other JSON parser would read the body.
		account, _ := ev.Fields["account"].(map[string]any)
		if ev.Fields["id"] != ev.ID || ev.Fields["type"] != ev.Type || account["id"] != ev.Account.ID {
			t.Fatalf("typed fields disagree with Fields: %q %q %q", ev.ID, ev.Type, ev.Account.ID)
		}
	})
}
