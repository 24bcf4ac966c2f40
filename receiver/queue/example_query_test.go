package queue_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/stairhook/stairhook/receiver/queue"
)

// A Recorder keeps refused requests and key uses off the accept path: the
// calls only buffer, and the buffer is written every second (or on Flush
// and Close).
func ExampleQueue_NewRecorder() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	q, err := queue.Open(ctx, queue.Location{SQLitePath: filepath.Join(dir, "stairhook.db")},
		queue.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer q.Close()
	rec := q.NewRecorder(queue.RecorderOptions{})

	r := httptest.NewRequest(http.MethodPost, "/webhooks/staircase", nil)
	r.Header.Set("X-Staircase-Signature", "v1,bm90IGEgcmVhbCBzaWduYXR1cmU=")
	rec.Refused(queue.NewRefusal(r, "staircase", http.StatusUnauthorized, "timestamp_too_new", "timestamp 312 s in the future"))
	rec.Close(ctx)

	refused, _ := q.Refused(ctx, queue.RefusedFilter{}, 10)
	for _, f := range refused {
		fmt.Println(f.Webhook, f.Status, f.Reason, f.Hint, f.Headers)
	}
	// Output: staircase 401 timestamp_too_new timestamp 312 s in the future [X-Staircase-Signature]
}

// Events lists the accepted events newest first, a page at a time, each
// with the state of its sinks.
func ExampleQueue_Events() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	q, err := queue.Open(ctx, queue.Location{SQLitePath: filepath.Join(dir, "stairhook.db")},
		queue.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer q.Close()
	for _, id := range []string{"evt_1", "evt_2", "evt_3"} {
		q.Accept(ctx, &queue.Accepted{Webhook: "staircase", EventID: id, Type: "churn_risk", Account: "acc_1",
			KeyLabel: "current", Scheme: "v1", Body: []byte(`{}`), Sinks: []string{"staircase.route1.jira"}})
	}
	f := queue.EventFilter{Webhook: "staircase"}
	for {
		page, err := q.Events(ctx, f, 2)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, e := range page.Events {
			fmt.Println(e.EventID, e.Sinks[0].Sink, e.Sinks[0].State)
		}
		if page.Next == "" {
			break
		}
		f.Cursor = page.Next
	}
	// Output:
	// evt_3 staircase.route1.jira queued
	// evt_2 staircase.route1.jira queued
	// evt_1 staircase.route1.jira queued
}
