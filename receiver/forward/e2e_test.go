package forward_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/forward"
	"github.com/stairhook/stairhook/receiver/queue"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// upstreamSecret is what the sender and the first receiver share.
const upstreamSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// bodySink records the raw body of every event it is given.
type bodySink struct {
	mu     sync.Mutex
	bodies map[string][]string // by event id
}

func (s *bodySink) Name() string { return "bodies" }

func (s *bodySink) Deliver(_ context.Context, ev *event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bodies == nil {
		s.bodies = map[string][]string{}
	}
	s.bodies[ev.ID] = append(s.bodies[ev.ID], string(ev.Raw))
	return nil
}

func (s *bodySink) of(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies[id]...)
}

// countingClient counts the requests the forward sinks send, by the
// signed id they carry (in either header family).
type countingClient struct {
	mu    sync.Mutex
	count map[string]int
}

func (c *countingClient) RoundTrip(r *http.Request) (*http.Response, error) {
	id := r.Header.Get("X-Staircase-Id") + r.Header.Get("Webhook-Id")
	c.mu.Lock()
	if c.count == nil {
		c.count = map[string]int{}
	}
	c.count[id]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingClient) of(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count[id]
}

// serve runs srv on a loopback port until the test ends, and returns its
// base URL.
func serve(t *testing.T, srv *receiver.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	return "http://" + l.Addr().String()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// One stairhook server forwards to a second one on loopback, which holds
// its own secret: the second verifies every hop with package verify and
// runs its routes (a dry-run Jira request, and a sink that keeps the raw
// body); a redelivery to the first forwards nothing again; a hop signed
// with a secret the second does not hold is refused 401 and becomes a
// dead letter at once.
func TestForwardBetweenTwoServers(t *testing.T) {
	for _, headers := range []string{forward.HeadersStaircase, forward.HeadersStandard} {
		t.Run(headers, func(t *testing.T) {
			// The next hop, as `stairhook serve` with its own secret.
			bodies := &bodySink{}
			outB := t.TempDir()
			srvB, err := receiver.NewServer(&receiver.Config{
				Store:  receiver.StoreConfig{SQLite: filepath.Join(t.TempDir(), "b.db")},
				Outbox: outB,
				Webhooks: []receiver.WebhookConfig{{
					Name:    "staircase",
					Secrets: []receiver.SecretConfig{{Label: "hop", Secret: destSecret}},
					Routes:  []receiver.RouteConfig{{Name: "risk", Jira: &receiver.JiraRoute{Project: "CS"}, Sinks: []string{"bodies"}}},
				}},
			}, receiver.ServerOptions{Sinks: []receiver.Sink{bodies}, Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			urlB := serve(t, srvB) + "/webhooks/staircase"

			// The first receiver forwards churn_risk with the right secret
			// and renewal with a wrong one.
			counter := &countingClient{}
			client := &http.Client{Transport: counter}
			logsA := &testenv.Buffer{}
			logA := slog.New(slog.NewJSONHandler(logsA, &slog.HandlerOptions{Level: slog.LevelDebug}))
			hop, err := forward.New("hop-b", forward.Route{URL: urlB, Secret: destSecret, Headers: headers}, client, logA)
			require.NoError(t, err)
			tampered, err := forward.New("hop-b-tampered", forward.Route{URL: urlB, Secret: otherSecret, Headers: headers}, client, logA)
			require.NoError(t, err)
			srvA, err := receiver.NewServer(&receiver.Config{
				Store:  receiver.StoreConfig{SQLite: filepath.Join(t.TempDir(), "a.db")},
				Outbox: t.TempDir(),
				Webhooks: []receiver.WebhookConfig{{
					Name:    "staircase",
					Secrets: []receiver.SecretConfig{{Secret: upstreamSecret}},
					Routes: []receiver.RouteConfig{
						{Name: "fwd", When: receiver.Match{Types: []string{event.TypeChurnRisk}}, Sinks: []string{"hop-b"}},
						{Name: "tampered", When: receiver.Match{Types: []string{event.TypeRenewal}}, Sinks: []string{"hop-b-tampered"}},
					},
				}},
			}, receiver.ServerOptions{Sinks: []receiver.Sink{hop, tampered}, Logger: logA})
			require.NoError(t, err)
			urlA := serve(t, srvA) + "/webhooks/staircase"

			upstream, err := verify.ParseSecret(upstreamSecret)
			require.NoError(t, err)
			post := func(id string, body []byte) *http.Response {
				t.Helper()
				req, err := http.NewRequest(http.MethodPost, urlA, bytes.NewReader(body))
				require.NoError(t, err)
				for k, v := range verifytest.SignedHeaders(upstream, id, time.Now(), body) {
					req.Header[k] = v
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				return resp
			}

			// The odd body crosses both hops byte for byte.
			require.Equal(t, http.StatusAccepted, post("evt_odd_1", []byte(oddBody)).StatusCode)
			jiraFile := filepath.Join(outB, "jira", "evt_odd_1-staircase.risk.jira.json")
			eventually(t, "the second server's dry-run Jira request", func() bool {
				_, err := os.Stat(jiraFile)
				return err == nil
			})
			data, err := os.ReadFile(jiraFile)
			require.NoError(t, err)
			var issue map[string]any
			require.NoError(t, json.Unmarshal(data, &issue), string(data))
			assert.Contains(t, string(data), "café 😀", "the second server decoded the event it verified")
			eventually(t, "the second server's body sink", func() bool { return len(bodies.of("evt_odd_1")) == 1 })
			assert.Equal(t, oddBody, bodies.of("evt_odd_1")[0])

			// A redelivery to the first server is its duplicate: no second
			// forward.
			resp := post("evt_odd_1", []byte(oddBody))
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "true", resp.Header.Get(verify.DuplicateHeader))

			// The tampered hop: refused 401 by the second server, a dead
			// letter at once on the first, with the reason and no secret.
			renewal, err := event.Sample(event.TypeRenewal)
			require.NoError(t, err)
			var m map[string]any
			require.NoError(t, json.Unmarshal(renewal, &m))
			m["id"] = "evt_tampered_1"
			renewal, err = json.Marshal(m)
			require.NoError(t, err)
			require.Equal(t, http.StatusAccepted, post("evt_tampered_1", renewal).StatusCode)
			var dead []*queue.DeadLetter
			eventually(t, "the tampered hop's dead letter", func() bool {
				dead = nil
				require.NoError(t, srvA.Queue().DeadLetters(context.Background(), "", func(d *queue.DeadLetter) error {
					dead = append(dead, d)
					return nil
				}))
				return len(dead) > 0
			})
			require.Len(t, dead, 1)
			assert.Equal(t, "hop-b-tampered", dead[0].Sink)
			assert.Equal(t, "evt_tampered_1", dead[0].EventID)
			assert.Equal(t, 1, dead[0].Attempts, "permanent: not retried")
			assert.Contains(t, dead[0].Error, "401 Unauthorized")
			assert.Contains(t, dead[0].Error, "no_matching_signature", "the second server's answer, quoted")
			assert.Empty(t, bodies.of("evt_tampered_1"))

			assert.Equal(t, 1, counter.of("evt_odd_1"), "one forward per event")
			assert.Equal(t, 1, counter.of("evt_tampered_1"))
			for _, secret := range []string{destSecret, otherSecret, upstreamSecret, strings.TrimPrefix(destSecret, "whsec_"), strings.TrimPrefix(otherSecret, "whsec_")} {
				assert.NotContains(t, logsA.String(), secret)
				assert.NotContains(t, dead[0].Error, secret)
			}
		})
	}
}
