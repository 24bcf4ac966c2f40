package slack

import (
	"encoding/json"
	"maps"
	"slices"

	"github.com/stairhook/stairhook/receiver/event"
)

// escapedEvent is a copy of ev with &, < and > escaped in every string a
// template can reach (the typed fields, Fields at any depth and Raw), so
// that a route's Text template writes markup of its own around payload
// text that can have none. ev is not changed.
func escapedEvent(ev *event.Event) *event.Event {
	e := *ev
	for _, s := range []*string{
		&e.ID, &e.Type, &e.Webhook.ID, &e.Webhook.Label, &e.Notification.ID, &e.Notification.Name,
		&e.Account.ID, &e.Account.Name, &e.Account.Domain, &e.Account.Status, &e.Account.StaircaseURL,
		&e.Signal.Title, &e.Signal.Summary, &e.Signal.Severity, &e.Signal.Sentiment, &e.Signal.Category,
	} {
		*s = escape(*s)
	}
	e.People = slices.Clone(ev.People)
	for i := range e.People {
		p := &e.People[i]
		for _, s := range []*string{&p.Name, &p.Email, &p.Title, &p.Role, &p.Change, &p.PreviousTitle} {
			*s = escape(*s)
		}
	}
	if ev.Raw != nil {
		e.Raw = json.RawMessage(escape(string(ev.Raw)))
	}
	if ev.Fields != nil {
		e.Fields = escapeValue(ev.Fields).(map[string]any)
	}
	return &e
}

// escapeValue copies a value decoded from JSON with its strings (map keys
// included) escaped.
func escapeValue(v any) any {
	switch v := v.(type) {
	case string:
		return escape(v)
	case json.Number:
		return json.Number(escape(string(v)))
	case map[string]any:
		out := make(map[string]any, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			out[escape(k)] = escapeValue(v[k])
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = escapeValue(x)
		}
		return out
	default:
		return v
	}
}
