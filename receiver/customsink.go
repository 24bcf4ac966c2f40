package receiver

import (
	"fmt"
	"strconv"
)

// customSinks checks the sinks of ServerOptions.Sinks and the names routes
// give in RouteConfig.Sinks against each other. It returns the sinks by
// name, each under the name read now, and the names no route uses.
func customSinks(c *Config, sinks []Sink) (map[string]Sink, []string, []error) {
	var errs []error
	bad := func(path, msg string) { errs = append(errs, configErr(path, msg)) }
	builtin := map[string]bool{}
	for _, w := range c.Webhooks {
		for j, r := range w.Routes {
			prefix := w.Name + "." + routeName(r, j) + "."
			for _, kind := range builtinKinds {
				builtin[prefix+kind] = true
			}
		}
	}
	byName := map[string]Sink{}
	index := map[string]int{}
	var order []string
	for i, sink := range sinks {
		p := "ServerOptions.Sinks[" + strconv.Itoa(i) + "]"
		if sink == nil {
			bad(p, "is nil")
			continue
		}
		name, ok := sinkNameOf(sink)
		switch {
		case !ok:
			bad(p, "its Name method panicked (a nil pointer?)")
		case !sinkName.MatchString(name):
			// Not quoted: it may be anything.
			bad(p+".Name()", sinkNameRule)
		case builtin[name]:
			bad(p+".Name()", fmt.Sprintf("%q is the name of a sink built from the configuration (<webhook>.<route>.<kind>, the kind one of jira, email, slack, teams, forward)", name))
		case byName[name] != nil:
			bad(p+".Name()", fmt.Sprintf("%q is also the name of ServerOptions.Sinks[%d]", name, index[name]))
		default:
			byName[name], index[name] = namedSink{name: name, Sink: sink}, i
			order = append(order, name)
		}
	}
	used := map[string]bool{}
	for i, w := range c.Webhooks {
		for j, r := range w.Routes {
			for k, name := range r.Sinks {
				used[name] = true
				if sinkName.MatchString(name) && byName[name] == nil { // a bad shape is validate's to report
					bad(fmt.Sprintf("webhooks[%d].routes[%d].sinks[%d]", i, j, k), fmt.Sprintf("no sink named %q in ServerOptions.Sinks", name))
				}
			}
		}
	}
	var unused []string
	for _, name := range order {
		if !used[name] {
			unused = append(unused, name)
		}
	}
	return byName, unused, errs
}

// sinkNameOf calls sink.Name, reporting a panic as !ok.
func sinkNameOf(sink Sink) (name string, ok bool) {
	defer func() {
		if recover() != nil {
			name, ok = "", false
		}
	}()
	return sink.Name(), true
}

// namedSink is a sink of ServerOptions.Sinks under the name NewServer
// read, so a Name that changes later cannot split its ledger records.
type namedSink struct {
	name string
	Sink
}

func (n namedSink) Name() string { return n.name }

// builtinKinds are the last part of the names of the sinks built from the
// configuration, <webhook>.<route>.<kind>: a sink of one's own cannot take
// one of those names.
var builtinKinds = []string{"jira", "email", "slack", "teams", "forward"}
