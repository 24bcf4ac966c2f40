package receiver

import (
	"testing"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stretchr/testify/assert"
)

func TestMatch(t *testing.T) {
	ev := &event.Event{
		Type:    event.TypeChurnRisk,
		Account: event.Account{ID: "acc_1", Status: "active"},
		Signal:  event.Signal{Severity: "high"},
		People:  []event.Person{{Name: "A", Role: "champion"}, {Name: "B", Role: ""}},
	}
	tests := []struct {
		name  string
		match Match
		want  bool
	}{
		// Empty lists match anything.
		{"zero match", Match{}, true},
		{"type", Match{Types: []string{event.TypeRenewal, event.TypeChurnRisk}}, true},
		{"type case ignored", Match{Types: []string{"CHURN_RISK"}}, true},
		{"other type", Match{Types: []string{event.TypeRenewal}}, false},
		{"type prefix is not a match", Match{Types: []string{"churn"}}, false},
		{"severity", Match{Severities: []string{"high", "critical"}}, true},
		{"other severity", Match{Severities: []string{"critical"}}, false},
		{"status", Match{AccountStatuses: []string{"active"}}, true},
		{"other status", Match{AccountStatuses: []string{"churned"}}, false},
		{"role of one person", Match{Roles: []string{"decision_maker", "champion"}}, true},
		{"no person has the role", Match{Roles: []string{"decision_maker"}}, false},
		// An empty role on a person never matches, even if a list held "".
		{"empty role", Match{Roles: []string{""}}, false},
		// All lists must match.
		{"all match", Match{Types: []string{event.TypeChurnRisk}, Severities: []string{"high"}, AccountStatuses: []string{"active"}, Roles: []string{"champion"}}, true},
		{"one list fails", Match{Types: []string{event.TypeChurnRisk}, Severities: []string{"low"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.match.matches(ev))
		})
	}

	t.Run("roles without people", func(t *testing.T) {
		assert.False(t, (&Match{Roles: []string{"champion"}}).matches(&event.Event{Type: "x"}))
		assert.True(t, (&Match{}).matches(&event.Event{Type: "x"}))
	})
}

func TestMatchSinks(t *testing.T) {
	a, b, c := nopSink("a"), nopSink("b"), nopSink("c")
	routes := []route{
		{name: "r1", match: Match{Types: []string{event.TypeChurnRisk}}, sinks: []Sink{a, b}},
		{name: "r2", match: Match{Types: []string{event.TypeRenewal}}, sinks: []Sink{c}},
		{name: "r3", sinks: []Sink{c}},
	}
	assert.Equal(t, []Sink{a, b, c}, matchSinks(routes, &event.Event{Type: event.TypeChurnRisk}))
	// A sink named by two matching routes runs once, at its first place.
	assert.Equal(t, []Sink{c}, matchSinks(routes, &event.Event{Type: event.TypeRenewal}))
	routes = append(routes, route{name: "r4", sinks: []Sink{b, a}})
	assert.Equal(t, []Sink{a, b, c}, matchSinks(routes, &event.Event{Type: event.TypeChurnRisk}))
	assert.Equal(t, []Sink{c, b, a}, matchSinks(routes, &event.Event{Type: event.TypeRenewal}))
	assert.Empty(t, matchSinks(routes[:2], &event.Event{Type: event.TypeNoReachOut}))
}
