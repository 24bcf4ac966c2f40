package email

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/mailpit"
	"github.com/stairhook/stairhook/receiver/internal/sinktest"
)

// TestEmailThroughMailpit sends through the real email sink to a real
// Mailpit (tls: none, as Mailpit runs without a certificate here) and reads
// the message back through Mailpit's API.
func TestEmailThroughMailpit(t *testing.T) {
	mp := mailpit.Start(t)
	cfg := SMTPConfig{
		Host: mp.SMTPHost, Port: mp.SMTPPort, TLS: "none",
		Username: "stairhook", Password: "any-password",
		From: "Staircase alerts <alerts@example.com>", Timeout: 10 * time.Second,
	}
	route := Route{To: []string{"CSM <csm@example.com>"}, Cc: []string{"lead@example.com"}}
	s, err := New("email:e2e", cfg, route, nil)
	require.NoError(t, err)

	ev := sinktest.HostileEvent()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, s.Deliver(ctx, ev))

	list := mp.WaitMessages(t, 1, 10*time.Second)
	require.Len(t, list, 1)
	msg, err := mp.Message(ctx, list[0].ID)
	require.NoError(t, err)

	assert.Equal(t, "[TEST] Churn X-Injected: yes (Acme <script>alert(1)</script> Bcc: victim@example.com)", msg.Subject)
	assert.Equal(t, "alerts@example.com", msg.From.Address)
	assert.Equal(t, "Staircase alerts", msg.From.Name)
	require.Len(t, msg.To, 1)
	assert.Equal(t, "csm@example.com", msg.To[0].Address)
	require.Len(t, msg.Cc, 1)
	assert.Equal(t, "lead@example.com", msg.Cc[0].Address)
	assert.Empty(t, msg.Bcc, "no Bcc smuggled in through a name")
	assert.Equal(t, MessageID("email:e2e", ev.ID, "example.com"), msg.MessageID)

	// Both parts, the HTML one escaped.
	assert.Contains(t, msg.Text, "Acme <script>alert(1)</script>")
	assert.Contains(t, msg.Text, "Ann <b>Lee</b>")
	assert.NotContains(t, msg.HTML, "<script>")
	assert.NotContains(t, msg.HTML, "<b>Lee")
	assert.Contains(t, msg.HTML, "&lt;script&gt;alert(1)&lt;/script&gt;")

	headers, err := mp.Headers(ctx, list[0].ID)
	require.NoError(t, err)
	for name := range headers {
		assert.NotContains(t, []string{"X-Injected", "Bcc"}, name, "payload added a header")
	}
	require.Len(t, headers["Subject"], 1)
	assert.False(t, strings.ContainsAny(headers["Subject"][0], "\r\n"))

	// A redelivery carries the same Message-ID, so the mailbox can tell.
	require.NoError(t, s.Deliver(ctx, ev))
	list = mp.WaitMessages(t, 2, 10*time.Second)
	assert.Equal(t, list[0].MessageID, list[1].MessageID)

	// A second route matching the same event sends its own message, with
	// its own Message-ID.
	s2, err := New("email:e2e-second", cfg, route, nil)
	require.NoError(t, err)
	require.NoError(t, s2.Deliver(ctx, ev))
	list = mp.WaitMessages(t, 3, 10*time.Second)
	ids := map[string]int{}
	for _, m := range list {
		ids[m.MessageID]++
	}
	assert.Equal(t, map[string]int{
		MessageID("email:e2e", ev.ID, "example.com"):        2,
		MessageID("email:e2e-second", ev.ID, "example.com"): 1,
	}, ids)
}
