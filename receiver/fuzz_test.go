package receiver

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzDecodeEvent(f *testing.F) {
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
		ev, err := DecodeEvent(body)
		if err != nil {
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("error does not wrap ErrInvalidEvent: %v", err)
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
		// Dates are lenient: whatever the date fields hold, the event is
		// accepted and a description renders without the zero time.
		if doc, err := json.Marshal(buildDescription(ev)); err != nil || strings.Contains(string(doc), "0001-01-01 00:00 UTC") {
			t.Fatalf("description: %v %s", err, doc)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	paths, _ := filepath.Glob("testdata/config/*.yaml")
	paths = append(paths, "../examples/receiver/config.yaml")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(minimalConfig))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte(`v: "${X}" # ${Y}` + "\n$$ '${X}'"))
	env := map[string]string{
		"SECRET": testSecret, "STAIRCASE_WEBHOOK_SECRET": testSecret,
		"JIRA_EMAIL": "bot@example.com", "JIRA_API_TOKEN": "t", "SMTP_USER": "u",
		"SMTP_PASSWORD": "p\"'\\\n#: x", "X": "x: y\n- z",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data, lookup)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error does not wrap ErrInvalidConfig: %v", err)
			}
			// The receiver's own errors never quote a value (the sinks'
			// checks, such as a template's parse error, may).
			var joined interface{ Unwrap() []error }
			errs := []error{err}
			if errors.As(err, &joined) {
				errs = joined.Unwrap()
			}
			for _, e := range errs {
				var sinkErr *sinkConfigError
				if !errors.As(e, &sinkErr) && strings.Contains(e.Error(), strings.TrimPrefix(testSecret, "whsec_")) {
					t.Fatalf("error quotes the secret: %v", e)
				}
			}
			return
		}
		if len(cfg.Webhooks) == 0 || cfg.Listen == "" || cfg.Outbox == "" {
			t.Fatal("accepted config without webhooks or defaults")
		}
		if errs := cfg.validate(); len(errs) > 0 {
			t.Fatalf("accepted config fails validation: %v", errs)
		}
	})
}
