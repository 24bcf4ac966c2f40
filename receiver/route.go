package receiver

import (
	"strings"

	"github.com/stairhook/stairhook/receiver/event"
)

// route is one configured route with its sinks built.
type route struct {
	name  string
	match Match
	sinks []Sink
}

// matches reports whether ev passes every non-empty list of m.
func (m *Match) matches(ev *event.Event) bool {
	return anyFold(m.Types, ev.Type) &&
		anyFold(m.Severities, ev.Signal.Severity) &&
		anyFold(m.AccountStatuses, ev.Account.Status) &&
		rolesMatch(m.Roles, ev.People)
}

// anyFold reports whether list is empty or holds v, ignoring case.
func anyFold(list []string, v string) bool {
	if len(list) == 0 {
		return true
	}
	for _, w := range list {
		if strings.EqualFold(w, v) {
			return true
		}
	}
	return false
}

// rolesMatch reports whether roles is empty or some person has one of them.
// An event without people does not match a non-empty roles list.
func rolesMatch(roles []string, people []event.Person) bool {
	if len(roles) == 0 {
		return true
	}
	for _, p := range people {
		if p.Role != "" && anyFold(roles, p.Role) {
			return true
		}
	}
	return false
}

// matchSinks returns the sinks of every route ev matches, in configuration
// order (within a route: jira, email, then its own list), each once: a
// sink of ServerOptions.Sinks named by several matching routes runs once,
// where the first of them puts it. Names are unique per sink (NewServer
// checks), so comparing names is comparing sinks.
func matchSinks(routes []route, ev *event.Event) []Sink {
	var out []Sink
	var seen map[string]bool // made once a second route matches
	for i := range routes {
		if !routes[i].match.matches(ev) {
			continue
		}
		if len(out) == 0 {
			out = append(out, routes[i].sinks...)
			continue
		}
		if seen == nil {
			seen = make(map[string]bool, len(out))
			for _, s := range out {
				seen[s.Name()] = true
			}
		}
		for _, s := range routes[i].sinks {
			if name := s.Name(); !seen[name] {
				seen[name] = true
				out = append(out, s)
			}
		}
	}
	return out
}
