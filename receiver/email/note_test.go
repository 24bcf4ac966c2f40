package email

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/smtptest"
	"github.com/stairhook/stairhook/receiver/internal/sinktest"
	"github.com/stairhook/stairhook/receiver/sink"
)

// The console shows the Message-ID of the mail sent, as the mailbox shows
// it; a failed send notes nothing.
func TestEmailNotesMessageID(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	s := newTestEmailSink(t, srv, SMTPConfig{Username: srv.Username, Password: srv.Password}, Route{})
	ev := sinktest.HostileEvent()
	got := map[string]string{}
	ctx := sink.WithNotes(sinktest.Context(t), func(k, v string) { got[k] = v })

	srv.Inject(1, smtptest.Fault{Code: 451})
	require.Error(t, s.Deliver(ctx, ev))
	assert.Empty(t, got)

	require.NoError(t, s.Deliver(ctx, ev))
	msgs := srv.Messages()
	require.Len(t, msgs, 1)
	header := sinktest.ParseMail(t, msgs[0].Data).Header.Get("Message-Id")
	assert.Equal(t, map[string]string{sink.NoteMessageID: "<" + MessageID("email:test", ev.ID, "example.com") + ">"}, got)
	assert.Equal(t, header, got[sink.NoteMessageID], "as the message's header")
}
