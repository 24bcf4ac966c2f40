package sink

import (
	"context"
	"sync"
)

// The keys the built-in sinks note of a delivery (see [Note]); the
// receiver's console shows them on the event's page.
const (
	// NoteJiraIssue is the key of the Jira issue an event's delivery
	// created or found, such as "CS-7".
	NoteJiraIssue = "jira_issue"
	// NoteJiraURL is the key of that issue's page,
	// "https://your-domain.atlassian.net/browse/CS-7".
	NoteJiraURL = "jira_url"
	// NoteMessageID is the key of the Message-ID of the mail sent, with its
	// angle brackets, as in the message's header.
	NoteMessageID = "message_id"
)

// notesKey is the context key of WithNotes.
type notesKey struct{}

// WithNotes returns ctx carrying f; [Note] calls it. Calls are serialised,
// so f need not be safe for concurrent use. A nil f drops the notes.
func WithNotes(ctx context.Context, f func(key, value string)) context.Context {
	if f == nil {
		f = func(string, string) {}
	}
	var mu sync.Mutex
	return context.WithValue(ctx, notesKey{}, func(key, value string) {
		mu.Lock()
		defer mu.Unlock()
		f(key, value)
	})
}

// Note reports a fact of the delivery (key, value) to whoever called the
// sink with [WithNotes]; a no-op otherwise. A sink notes what an operator
// would look for at the destination: the issue it made, the message it
// sent. Call it before Deliver returns.
//
// On the queued path the receiver keeps the notes with the delivery's job
// for its console: keys of 1 to 32 of a-z, 0-9 and "_", starting with a
// letter (others are dropped), values cut to 512 bytes, at most 8 keys
// per job. Values are shown to operators: never note a secret.
func Note(ctx context.Context, key, value string) {
	if f, ok := ctx.Value(notesKey{}).(func(key, value string)); ok {
		f(key, value)
	}
}
