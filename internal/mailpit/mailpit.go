// Package mailpit starts a real Mailpit (github.com/axllent/mailpit) for an
// end-to-end test, on free loopback ports with a throw-away database, and
// reads the captured messages back through its HTTP API (/api/v1/…).
//
// A missing mailpit binary skips the test, or fails it when STAIRHOOK_E2E is
// set (see internal/testenv).
package mailpit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stairhook/stairhook/internal/testenv"
)

// Install is how .ci/run installs the binary.
const Install = "go install github.com/axllent/mailpit@v1.33.1"

// Mailpit is a running Mailpit process.
type Mailpit struct {
	// SMTPHost and SMTPPort accept mail (no TLS; any AUTH accepted, PLAIN
	// and LOGIN allowed in clear).
	SMTPHost string
	SMTPPort int
	// APIURL is the base of the HTTP API, "http://127.0.0.1:P".
	APIURL string

	client *http.Client
}

// Start runs mailpit for the test and kills it (by process id) when the
// test ends.
func Start(t testing.TB) *Mailpit {
	t.Helper()
	bin := testenv.Binary(t, "mailpit", Install)
	db := filepath.Join(t.TempDir(), "mailpit.db")
	client := &http.Client{Timeout: 10 * time.Second}
	ports, _ := testenv.StartServer(t, 2, func(p []int) *exec.Cmd {
		return exec.Command(bin,
			"--smtp", testenv.Addr(p[0]),
			"--listen", testenv.Addr(p[1]),
			"--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--smtp-disable-rdns",
			"--database", db,
			"--disable-version-check", "--quiet",
		)
	}, func(p []int) error {
		c, err := net.DialTimeout("tcp", testenv.Addr(p[0]), time.Second)
		if err != nil {
			return err
		}
		c.Close()
		resp, err := client.Get("http://" + testenv.Addr(p[1]) + "/api/v1/info")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var info struct{ Version string }
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&info); err != nil || resp.StatusCode != http.StatusOK || info.Version == "" {
			return fmt.Errorf("GET /api/v1/info: status %d, not mailpit", resp.StatusCode)
		}
		return nil
	})
	smtpPort, httpPort := ports[0], ports[1]
	return &Mailpit{
		SMTPHost: "127.0.0.1", SMTPPort: smtpPort,
		APIURL: "http://" + testenv.Addr(httpPort),
		client: client,
	}
}

// Address is a mailbox as the API reports it.
type Address struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// Summary is one entry of GET /api/v1/messages.
type Summary struct {
	ID        string    `json:"ID"`
	MessageID string    `json:"MessageID"`
	From      Address   `json:"From"`
	To        []Address `json:"To"`
	Cc        []Address `json:"Cc"`
	Subject   string    `json:"Subject"`
}

// Message is GET /api/v1/message/{ID}: the fields of its Summary, the
// blind copies and both parts.
type Message struct {
	Summary
	Bcc  []Address `json:"Bcc"`
	Text string    `json:"Text"`
	HTML string    `json:"HTML"`
}

// Messages lists the captured messages, newest first.
func (m *Mailpit) Messages(ctx context.Context) ([]Summary, error) {
	var out struct {
		Messages []Summary `json:"messages"`
	}
	if err := m.get(ctx, "/api/v1/messages?limit=1000", &out); err != nil {
		return nil, err
	}
	return out.Messages, nil
}

// Message reads one message.
func (m *Mailpit) Message(ctx context.Context, id string) (*Message, error) {
	var out Message
	if err := m.get(ctx, "/api/v1/message/"+url.PathEscape(id), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Headers reads one message's headers, decoded, by canonical name.
func (m *Mailpit) Headers(ctx context.Context, id string) (map[string][]string, error) {
	var out map[string][]string
	if err := m.get(ctx, "/api/v1/message/"+url.PathEscape(id)+"/headers", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// WaitMessages polls until at least n messages arrived or the timeout
// passes, and returns them.
func (m *Mailpit) WaitMessages(t testing.TB, n int, timeout time.Duration) []Summary {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs, err := m.Messages(context.Background())
		if err != nil {
			t.Fatalf("mailpit: %v", err)
		}
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit: %d messages after %v, want %d", len(msgs), timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (m *Mailpit) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.APIURL+path, nil)
	if err != nil {
		return err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return fmt.Errorf("mailpit %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("mailpit %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mailpit %s: %s: %.200s", path, resp.Status, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("mailpit %s: %w", path, err)
	}
	return nil
}
