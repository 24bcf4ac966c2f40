package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/stairhook/stairhook/receiver/console"
	"github.com/stairhook/stairhook/receiver/queue"
)

// statusErrors is how many recent failures `status` shows.
const statusErrors = 5

// statusReport is what `status --json` prints.
type statusReport struct {
	Store         string                    `json:"store"`
	Jobs          map[queue.SinkState]int64 `json:"jobs"`
	OldestPending *time.Time                `json:"oldest_pending,omitempty"`
	// OldestPendingAge is in seconds.
	OldestPendingAge float64               `json:"oldest_pending_age_seconds"`
	Dead             int64                 `json:"dead"`
	Hour             queue.Window          `json:"last_hour"`
	Day              queue.Window          `json:"last_day"`
	Refused          []queue.RefusedCount  `json:"refused_last_day"`
	LastErrors       []queue.FailedJob     `json:"last_errors"`
	Webhooks         []queue.WebhookCounts `json:"webhooks"`
}

// runStatus implements "stairhook status".
func runStatus(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet("status", "status [--json] [--store STORE] [--config FILE]", `
Print the receiver's queue from its database: the jobs by state, the
oldest job still to deliver, the dead letters, the last hour's and day's
events, the refused requests by reason, and the last failures (errors
redacted, as in the console).`)
	store := fs.String("store", "", storeFlagHelp)
	configPath := fs.String("config", "", "the receiver's config `FILE`, for its store (default $STAIRHOOK_CONFIG)")
	asJSON := fs.Bool("json", false, "print the status as one JSON object")
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	q, code := openStoreFor(ctx, e, fs, "status", *store, *configPath)
	if q == nil {
		return code
	}
	defer q.Close()
	o, err := q.Overview(ctx)
	if err != nil {
		return failf(e, "status", "%v", err)
	}
	failed, err := q.LastErrors(ctx, statusErrors)
	if err != nil {
		return failf(e, "status", "%v", err)
	}
	for i := range failed {
		failed[i].Error = console.Redact(failed[i].Error)
	}
	r := statusReport{Store: q.Location().String(), Jobs: o.Depth.Jobs, Dead: o.Depth.Jobs[queue.StateDead],
		Hour: o.Hour, Day: o.Day, Refused: o.Refused, LastErrors: failed, Webhooks: o.Webhooks}
	if r.LastErrors == nil {
		r.LastErrors = []queue.FailedJob{}
	}
	if !o.Depth.OldestPending.IsZero() {
		t := o.Depth.OldestPending
		r.OldestPending = &t
		r.OldestPendingAge = max(o.Now.Sub(t), 0).Seconds()
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(r); err != nil {
			return failf(e, "status", "%v", err)
		}
		return exitOK
	}
	printStatus(e.stdout, &r)
	return exitOK
}

func printStatus(w io.Writer, r *statusReport) {
	fmt.Fprintf(w, "database  %s\n\njobs", r.Store)
	for _, s := range queue.SinkStates() {
		if n, ok := r.Jobs[s]; ok {
			fmt.Fprintf(w, "  %s %d", s, n)
		}
	}
	fmt.Fprintln(w)
	if r.OldestPending != nil {
		fmt.Fprintf(w, "oldest pending  queued %s (%s ago)\n", r.OldestPending.Format(time.RFC3339),
			time.Duration(r.OldestPendingAge*float64(time.Second)).Round(time.Second))
	} else {
		fmt.Fprintln(w, "oldest pending  none")
	}
	fmt.Fprintf(w, "dead letters    %d\n", r.Dead)
	for _, win := range []struct {
		name string
		w    queue.Window
	}{{"last hour", r.Hour}, {"last day ", r.Day}} {
		fmt.Fprintf(w, "%s       accepted %d  delivered %d  dead %d  refused %d\n", win.name, win.w.Accepted, win.w.Delivered, win.w.Dead, win.w.Refused)
	}
	if len(r.Refused) > 0 {
		fmt.Fprintln(w, "\nrefused in the last day")
		for _, c := range r.Refused {
			fmt.Fprintf(w, "  %s  %s  %d\n", terminalSafe(c.Webhook), terminalSafe(c.Reason), c.Count)
		}
	}
	if len(r.LastErrors) > 0 {
		fmt.Fprintln(w, "\nlast failures")
		for _, f := range r.LastErrors {
			fmt.Fprintf(w, "  job %d  %s  %s/%s  %s  %s\n    %s\n", f.ID, f.At.Format(time.RFC3339), terminalSafe(f.Webhook),
				terminalSafe(f.EventID), terminalSafe(f.Sink), f.State, terminalSafe(clipLine(f.Error, 300)))
		}
	}
}
