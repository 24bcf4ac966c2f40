package sink_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/stairhook/stairhook/receiver/sink"
)

func TestPermanent(t *testing.T) {
	assert.NoError(t, sink.Permanent(nil))
	base := errors.New("400 bad request")
	err := sink.Permanent(base)
	assert.ErrorIs(t, err, sink.ErrPermanent)
	assert.ErrorIs(t, err, base)
	assert.Equal(t, base.Error(), err.Error(), "the text is the failure's own")
	assert.NotErrorIs(t, base, sink.ErrPermanent)
}

func TestRetryAfterError(t *testing.T) {
	base := errors.New("429 too many requests")
	var err error = &sink.RetryAfterError{Err: base, After: 3 * time.Second}
	assert.ErrorIs(t, err, base)
	assert.NotErrorIs(t, err, sink.ErrPermanent)
	assert.Equal(t, base.Error(), err.Error())
}

func TestReasonClass(t *testing.T) {
	base := errors.New("550 no such user SECRET-DETAIL")
	assert.Equal(t, "unclassified", sink.ReasonClass(base))
	assert.Equal(t, "unclassified", sink.ReasonClass(nil))
	classed := sink.Classed("smtp 550", base)
	assert.Equal(t, base.Error(), classed.Error())
	assert.ErrorIs(t, classed, base)
	// Seen through Permanent, fmt wrapping and a RetryAfterError, in
	// either order with Permanent.
	assert.Equal(t, "smtp 550", sink.ReasonClass(sink.Permanent(classed)))
	assert.Equal(t, "smtp 550", sink.ReasonClass(sink.Classed("smtp 550", sink.Permanent(base))))
	assert.Equal(t, "smtp 550", sink.ReasonClass(fmt.Errorf("email: %w", classed)))
	assert.Equal(t, "smtp 550", sink.ReasonClass(&sink.RetryAfterError{Err: classed}))
	// The outermost class wins.
	assert.Equal(t, "smtp tls or auth", sink.ReasonClass(sink.Classed("smtp tls or auth", classed)))
}

func TestNote(t *testing.T) {
	sink.Note(context.Background(), sink.NoteJiraIssue, "CS-1") // no WithNotes: nothing happens

	var got []string
	ctx := sink.WithNotes(context.Background(), func(k, v string) { got = append(got, k+"="+v) })
	sink.Note(ctx, sink.NoteJiraIssue, "CS-1")
	derived, cancel := context.WithCancel(ctx)
	cancel()
	sink.Note(derived, sink.NoteMessageID, "<m@example.com>") // a derived context, ended or not, carries f
	assert.Equal(t, []string{"jira_issue=CS-1", "message_id=<m@example.com>"}, got)

	// The innermost WithNotes wins; a nil f drops the notes.
	inner := sink.WithNotes(ctx, func(k, v string) { got = append(got, "inner "+k) })
	sink.Note(inner, "x", "1")
	sink.Note(sink.WithNotes(ctx, nil), "y", "2")
	assert.Equal(t, []string{"jira_issue=CS-1", "message_id=<m@example.com>", "inner x"}, got)
}

// A sink may note from several goroutines of one Deliver: the calls reach
// f one at a time (run with -race).
func TestNoteSerialised(t *testing.T) {
	n := 0
	ctx := sink.WithNotes(context.Background(), func(string, string) { n++ })
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				sink.Note(ctx, "k", "v")
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 800, n)
}

// The keys are the ones the console orders and links (receiver/console)
// and the queue accepts (1 to 32 of a-z, 0-9 and _).
func TestNoteKeys(t *testing.T) {
	for _, k := range []string{sink.NoteJiraIssue, sink.NoteJiraURL, sink.NoteMessageID} {
		assert.Regexp(t, `^[a-z][a-z0-9_]{0,31}$`, k)
	}
	assert.Equal(t, "jira_issue", sink.NoteJiraIssue)
	assert.Equal(t, "jira_url", sink.NoteJiraURL)
	assert.Equal(t, "message_id", sink.NoteMessageID)
}
