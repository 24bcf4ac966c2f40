package render

import (
	"encoding/json"
	"time"

	"github.com/stairhook/stairhook/receiver/event"
)

// DetectedAt is the signal's detection time as a sink shows it: in UTC,
// "2006-01-02 15:04 UTC", when it parsed; else the value as received
// (event.Decode accepts dates it cannot parse and leaves the zero time),
// which is payload text that the caller puts through OneLine and bounds,
// as it does any field (the formatted time passes through both
// unchanged); else "". Never the zero time.
func DetectedAt(ev *event.Event) string {
	if !ev.Signal.DetectedAt.IsZero() {
		return ev.Signal.DetectedAt.UTC().Format("2006-01-02 15:04 UTC")
	}
	signal, _ := ev.Fields["signal"].(map[string]any)
	var raw string
	switch v := signal["detected_at"].(type) {
	case string:
		raw = v
	case json.Number:
		raw = v.String()
	}
	if _, err := time.Parse(time.RFC3339Nano, raw); err == nil {
		return "" // the zero time itself, sent as such
	}
	return raw
}
