package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stairhook/stairhook/receiver/console"
	"github.com/stairhook/stairhook/receiver/queue"
)

// Bounds of `events list`.
const (
	defaultEventsLimit = 50
	maxEventsLimit     = 10_000
	// maxEventIDArg bounds the event id `events show` takes.
	maxEventIDArg = 256
)

// runEvents implements "stairhook events list|show".
func runEvents(ctx context.Context, e *env, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "list":
			return runEventsList(ctx, e, args[1:])
		case "show":
			return runEventsShow(ctx, e, args[1:])
		}
	}
	fs := newFlagSet("events", "events list|show [flags]", `
The events the receiver accepted, from its database: "list" prints them
newest first, with the state of each sink; "show ID" prints one with its
sinks' attempts and its body. Run "stairhook events list --help" or
"stairhook events show --help" for their flags.`)
	if len(args) > 0 {
		if code, ok := parseFlags(e, fs, args); !ok {
			return code
		}
	}
	return usageError(e, fs, `missing subcommand: "list" or "show"`)
}

// sinceFlag reads --since: a duration back from now (90m, 24h, 7d) or a
// date or RFC 3339 time.
func sinceFlag(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days > 0 && days <= 3660 {
			return now.Add(-time.Duration(days) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("--since takes a duration (90m, 24h, 7d), a date (2006-01-02) or an RFC 3339 time")
}

func statesHelp() string {
	var names []string
	for _, s := range queue.SinkStates() {
		names = append(names, string(s))
	}
	return strings.Join(names, "|")
}

func runEventsList(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet("events list", "events list [--state STATE] [--since 1h] [--webhook NAME] [--type TYPE] [--account ID] [--limit N] [--json] [--store STORE] [--config FILE]", `
Print the accepted events, newest first, with the state of each sink:
queued, running, retrying, waiting (as the destination asked), delivered
or dead. --state keeps the events with a sink in that state (delivered:
nothing left to deliver). --json prints one JSON object a line.`)
	store := fs.String("store", "", storeFlagHelp)
	configPath := fs.String("config", "", "the receiver's config `FILE`, for its store (default $STAIRHOOK_CONFIG)")
	state := fs.String("state", "", "only events with a sink in `STATE`: "+statesHelp())
	since := fs.String("since", "", "only events received since `WHEN`: 90m, 24h, 7d, 2006-01-02 or an RFC 3339 time")
	webhook := fs.String("webhook", "", "only the events of the webhook `NAME`")
	typ := fs.String("type", "", "only the events of the signal `TYPE`")
	account := fs.String("account", "", "only the events about the account `ID`")
	limit := fs.Int("limit", defaultEventsLimit, "print at most `N` events (up to 10000)")
	asJSON := fs.Bool("json", false, "one JSON object a line")
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	f := queue.EventFilter{Webhook: *webhook, Type: *typ, Account: *account}
	var err error
	if f.State, err = queue.ParseSinkState(*state); err != nil {
		return usageError(e, fs, "--state must be one of "+statesHelp())
	}
	if f.Since, err = sinceFlag(*since, time.Now()); err != nil {
		return usageError(e, fs, err.Error())
	}
	if *limit <= 0 || *limit > maxEventsLimit {
		return usageError(e, fs, "--limit must be 1 to 10000")
	}
	q, code := openStoreFor(ctx, e, fs, "events list", *store, *configPath)
	if q == nil {
		return code
	}
	defer q.Close()

	var out eventPrinter = &eventTable{w: tabwriter.NewWriter(e.stdout, 2, 8, 2, ' ', 0)}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		out = jsonLines{enc}
	}
	n, more := 0, false
	for n < *limit {
		page, err := q.Events(ctx, f, min(*limit-n, queue.EventsPage))
		if err != nil {
			return failf(e, "events list", "%v", err)
		}
		for _, ev := range page.Events {
			if err := out.print(ev); err != nil {
				return failf(e, "events list", "%v", err)
			}
			n++
		}
		if page.Next == "" {
			break
		}
		f.Cursor, more = page.Next, n >= *limit
	}
	if err := out.flush(); err != nil {
		return failf(e, "events list", "%v", err)
	}
	if more {
		fmt.Fprintf(e.stderr, "%d event(s); there are more: raise --limit or narrow the filter\n", n)
	} else {
		fmt.Fprintf(e.stderr, "%d event(s)\n", n)
	}
	return exitOK
}

// eventPrinter prints the events of a listing.
type eventPrinter interface {
	print(queue.EventSummary) error
	flush() error
}

type jsonLines struct{ enc *json.Encoder }

func (j jsonLines) print(ev queue.EventSummary) error { return j.enc.Encode(ev) }
func (jsonLines) flush() error                        { return nil }

type eventTable struct {
	w      *tabwriter.Writer
	header bool
}

func (t *eventTable) print(ev queue.EventSummary) error {
	if !t.header {
		t.header = true
		fmt.Fprintln(t.w, "RECEIVED\tWEBHOOK\tEVENT\tTYPE\tACCOUNT\tSINKS")
	}
	var sinks []string
	for _, s := range ev.Sinks {
		sinks = append(sinks, terminalSafe(s.Sink)+"="+string(s.State))
	}
	if len(sinks) == 0 {
		sinks = []string{"(no route)"}
	}
	id := terminalSafe(ev.EventID)
	if ev.Test {
		id += " (test)"
	}
	_, err := fmt.Fprintf(t.w, "%s\t%s\t%s\t%s\t%s\t%s\n", ev.ReceivedAt.Format("2006-01-02 15:04:05Z"),
		terminalSafe(ev.Webhook), id, terminalSafe(ev.Type), terminalSafe(ev.Account), strings.Join(sinks, " "))
	return err
}

func (t *eventTable) flush() error { return t.w.Flush() }

// terminalSafe keeps a sender's text from driving the terminal and the
// table: control characters (an escape sequence, a carriage return, a tab
// or a newline) are shown escaped. (printable, for a body, keeps tabs and
// newlines.)
func terminalSafe(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }) {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

func runEventsShow(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet("events show", "events show ID [--webhook NAME] [--json] [--store STORE] [--config FILE]", `
Print one event: what was verified (key, scheme, time), each sink's job
with its attempts (time, duration, error) and what the sink noted (a Jira
issue, an email's Message-ID), and the body. Ids are per webhook: give
--webhook when more than one webhook accepted an event of that id.
Errors are shown redacted, as in the console.`)
	store := fs.String("store", "", storeFlagHelp)
	configPath := fs.String("config", "", "the receiver's config `FILE`, for its store (default $STAIRHOOK_CONFIG)")
	webhook := fs.String("webhook", "", "the webhook `NAME` that accepted the event")
	asJSON := fs.Bool("json", false, "print the event as one JSON object")
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	if id == "" {
		return usageError(e, fs, "give the event's id: events show ID")
	}
	if len(id) > maxEventIDArg || strings.ContainsFunc(id, func(r rune) bool { return r <= 0x20 || r >= 0x7f }) {
		// Not echoed: it may be something pasted in the wrong place.
		return usageError(e, fs, "an event id is 1 to 256 visible ASCII characters")
	}
	q, code := openStoreFor(ctx, e, fs, "events show", *store, *configPath)
	if q == nil {
		return code
	}
	defer q.Close()
	if *webhook == "" {
		hooks, err := q.FindEvent(ctx, id)
		if err != nil {
			return failf(e, "events show", "%v", err)
		}
		switch len(hooks) {
		case 0:
			return failf(e, "events show", "no event %s in %s", id, q.Location())
		case 1:
			*webhook = hooks[0]
		default:
			return failf(e, "events show", "the webhooks %s each accepted an event %s: give --webhook", strings.Join(hooks, ", "), id)
		}
	}
	d, err := q.Event(ctx, *webhook, id)
	if errors.Is(err, queue.ErrNoEvent) {
		return failf(e, "events show", "no event %s of webhook %s in %s", id, terminalSafe(*webhook), q.Location())
	}
	if err != nil {
		return failf(e, "events show", "%v", err)
	}
	for i := range d.Jobs {
		for k := range d.Jobs[i].Tries {
			d.Jobs[i].Tries[k].Error = console.Redact(d.Jobs[i].Tries[k].Error)
		}
		for k, v := range d.Jobs[i].Receipt {
			d.Jobs[i].Receipt[k] = console.Redact(v)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(d); err != nil {
			return failf(e, "events show", "%v", err)
		}
		return exitOK
	}
	printEvent(e.stdout, d)
	return exitOK
}

// printEvent prints an event's detail for a reader.
func printEvent(w io.Writer, d *queue.EventDetail) {
	test := ""
	if d.Test {
		test = " (test)"
	}
	signed := "-"
	if d.SignedAt != nil {
		signed = d.SignedAt.Format(time.RFC3339) + " (" + console.SignedGap(*d.SignedAt, d.ReceivedAt) + ")"
	}
	fmt.Fprintf(w, "event     %s%s\nwebhook   %s\ntype      %s\naccount   %s\nsigned    %s\nreceived  %s\nkey       %s (%s)\n",
		terminalSafe(d.EventID), test, terminalSafe(d.Webhook), terminalSafe(d.Type), terminalSafe(d.Account),
		signed, d.ReceivedAt.Format(time.RFC3339Nano), terminalSafe(d.KeyLabel), terminalSafe(d.Scheme))
	jobs := map[string]queue.JobDetail{}
	for _, j := range d.Jobs {
		jobs[j.Sink] = j
	}
	for _, s := range d.Sinks {
		fmt.Fprintf(w, "\nsink %s: %s\n", terminalSafe(s.Sink), s.State)
		j, ok := jobs[s.Sink]
		if !ok {
			fmt.Fprintln(w, "  (its job was cleaned up after the delivery)")
			continue
		}
		fmt.Fprintf(w, "  job %d, queued %s", j.ID, j.Queued.Format(time.RFC3339))
		if j.ReplayOf != 0 {
			fmt.Fprintf(w, ", replay of job %d", j.ReplayOf)
		}
		if j.Next != nil {
			fmt.Fprintf(w, ", next attempt %s", j.Next.Format(time.RFC3339))
		}
		if j.Finished != nil {
			fmt.Fprintf(w, ", ended %s", j.Finished.Format(time.RFC3339))
		}
		fmt.Fprintln(w)
		for _, k := range slices.Sorted(maps.Keys(j.Receipt)) {
			fmt.Fprintf(w, "  %s: %s\n", terminalSafe(k), terminalSafe(j.Receipt[k]))
		}
		for _, t := range j.Tries {
			took := "-"
			if t.Took > 0 {
				took = t.Took.Round(time.Millisecond).String()
			}
			outcome := "delivered"
			if t.Error != "" {
				outcome = terminalSafe(clipLine(t.Error, 300))
			}
			fmt.Fprintf(w, "  attempt %d  %s  %s  %s\n", t.Number, t.Began.Format(time.RFC3339), took, outcome)
		}
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, d.Body, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(d.Body)
	}
	fmt.Fprintf(w, "\nbody\n%s\n", console.Redact(printable(pretty.Bytes())))
}

// clipLine cuts s to n bytes, marking the cut.
func clipLine(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
