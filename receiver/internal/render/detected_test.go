package render

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/stairhook/stairhook/receiver/event"
)

func TestDetectedAt(t *testing.T) {
	raw := func(v any) *event.Event {
		return &event.Event{Fields: map[string]any{"signal": map[string]any{"detected_at": v}}}
	}
	parsed := &event.Event{}
	parsed.Signal.DetectedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	for name, tc := range map[string]struct {
		ev   *event.Event
		want string
	}{
		"parsed, in UTC":          {parsed, "2026-01-02 02:04 UTC"},
		"unparsed, as received":   {raw("yesterday\n\x00<b>"), "yesterday\n\x00<b>"},
		"a number, as received":   {raw(json.Number("1764151200")), "1764151200"},
		"the zero time, left out": {raw("0001-01-01T00:00:00Z"), ""},
		"empty":                   {raw(""), ""},
		"another type, left out":  {raw(true), ""},
		"no signal":               {&event.Event{}, ""},
		"signal not an object":    {&event.Event{Fields: map[string]any{"signal": "x"}}, ""},
	} {
		assert.Equal(t, tc.want, DetectedAt(tc.ev), name)
	}
}
