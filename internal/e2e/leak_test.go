package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// leakCheck collects the values that must never appear in anything the
// module says (responses, headers, log lines, errors, CLI output), and
// checks text against them.
type leakCheck struct {
	mu      sync.Mutex
	needles map[string]string // value → what it is
	checked int
}

func newLeakCheck() *leakCheck { return &leakCheck{needles: map[string]string{}} }

func (c *leakCheck) add(what, v string) {
	if len(v) < 8 {
		panic("needle too short to look for: " + what)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.needles[v] = what
}

// secret adds every form of a secret: the whsec_ text, its base64 without
// the prefix, the raw key bytes and their hex.
func (c *leakCheck) secret(what string, s verify.Secret) []byte {
	text := s.Encode()
	b64 := strings.TrimPrefix(text, verify.SecretPrefix)
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		panic(err)
	}
	c.add(what+" (whsec_ text)", text)
	c.add(what+" (base64)", b64)
	c.add(what+" (raw key)", string(key))
	c.add(what+" (hex)", hex.EncodeToString(key))
	c.add(what+" (HEX)", strings.ToUpper(hex.EncodeToString(key)))
	return key
}

// mac adds the MACs a receiver holding key computes for a request: over
// the id, timestamp and body received, in base64 and hex, and each v1 entry
// the request carries.
func (c *leakCheck) request(what string, keys [][]byte, h http.Header, body []byte) {
	id, ts := h.Get("X-Staircase-Id"), h.Get("X-Staircase-Timestamp")
	for i, key := range keys {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id + "." + ts + "."))
		m.Write(body)
		sum := m.Sum(nil)
		c.add(fmt.Sprintf("%s: MAC with key %d (base64)", what, i), base64.StdEncoding.EncodeToString(sum))
		c.add(fmt.Sprintf("%s: MAC with key %d (base64, first 12)", what, i), base64.StdEncoding.EncodeToString(sum)[:12])
		c.add(fmt.Sprintf("%s: MAC with key %d (hex)", what, i), hex.EncodeToString(sum))
		c.add(fmt.Sprintf("%s: MAC with key %d (hex, first 12)", what, i), hex.EncodeToString(sum)[:12])
		c.add(fmt.Sprintf("%s: MAC with key %d (raw)", what, i), string(sum))
	}
	for _, v := range h.Values("X-Staircase-Signature") {
		for _, e := range strings.Fields(v) {
			if val, ok := strings.CutPrefix(e, "v1,"); ok && len(val) >= 12 {
				c.add(what+": received v1 signature", val)
				c.add(what+": received v1 signature (first 12)", val[:12])
			}
		}
	}
}

// check fails the test when text contains any needle.
func (c *leakCheck) check(t testing.TB, where, text string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked++
	for v, what := range c.needles {
		if strings.Contains(text, v) {
			t.Errorf("LEAK: %s contains %s", where, what)
		}
	}
}

func (c *leakCheck) response(t testing.TB, where string, resp *response) {
	t.Helper()
	c.check(t, where+" body", resp.Body)
	var hs strings.Builder
	_ = resp.Header.Write(&hs)
	c.check(t, where+" headers", hs.String())
}

// TestLeakMiddleware runs every failure path of the bare verify middleware
// (each status it answers) with its default OnError logger and with an
// OnError that keeps the errors, and checks that no answer, header, log
// line or error carries the secret, a MAC or the signature received.
//
// It replaces slog's default logger, so it does not run in parallel.
func TestLeakMiddleware(t *testing.T) {
	logs := &testenv.Buffer{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })

	lc := newLeakCheck()
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	old2, err := verify.NewSecret()
	require.NoError(t, err)
	key := lc.secret("secret", secret)
	key2 := lc.secret("old secret", old2)
	keys := [][]byte{key, key2}

	var errMu sync.Mutex
	var errs []string
	failing := &failStore{Store: verify.NewMemoryStore(verify.MemoryStoreOptions{})}
	block := make(chan struct{})
	entered := make(chan struct{}, 1)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Block") != "" {
			entered <- struct{}{}
			<-block
		}
		w.WriteHeader(http.StatusOK)
	})
	mk := func(onErr bool) http.Handler {
		o := verify.Options{
			Keys:         []verify.Key{{Label: "current", Secret: secret}, {Label: "old", Secret: old2}},
			Store:        failing,
			MaxBodyBytes: 4096,
		}
		if onErr {
			o.OnError = func(_ *http.Request, err error) {
				errMu.Lock()
				errs = append(errs, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
				errMu.Unlock()
			}
		}
		v, err := verify.NewVerifier(o)
		require.NoError(t, err)
		return v.Middleware(handler)
	}

	for _, withOnError := range []bool{false, true} {
		srv := httptest.NewServer(mk(withOnError))
		now := time.Now()
		body := []byte(`{"id":"evt_leak","type":"renewal","account":{"id":"acc_1"}}`)
		signed := func(id string, b []byte) http.Header {
			h := verifytest.SignedHeaders(secret, id, now, b)
			lc.request("signed "+id, keys, h, b)
			return h
		}
		cases := []struct {
			name   string
			method string
			h      http.Header
			body   []byte
			status int
		}{}
		add := func(name, method string, h http.Header, b []byte, status int) {
			cases = append(cases, struct {
				name   string
				method string
				h      http.Header
				body   []byte
				status int
			}{name, method, h, b, status})
		}
		sfx := strconv.FormatBool(withOnError)
		add("405 GET", http.MethodGet, signed("evt_get"+sfx, body), body, http.StatusMethodNotAllowed)
		big := bytes.Repeat([]byte("x"), 5000)
		add("413 body over cap", http.MethodPost, signed("evt_big"+sfx, big), big, http.StatusRequestEntityTooLarge)
		add("400 missing signature", http.MethodPost, http.Header{"X-Staircase-Id": {"evt_nosig"}}, body, http.StatusBadRequest)
		h := signed("evt_malformed"+sfx, body)
		h.Set("X-Staircase-Signature", h.Get("X-Staircase-Signature")+"!")
		add("400 malformed entry", http.MethodPost, h, body, http.StatusBadRequest)
		h = signed("evt_badts"+sfx, body)
		h.Set("X-Staircase-Timestamp", "soon")
		add("400 malformed timestamp", http.MethodPost, h, body, http.StatusBadRequest)
		tampered := append([]byte(nil), body...)
		tampered[5] ^= 1
		h = signed("evt_tampered"+sfx, body)
		lc.request("tampered", keys, h, tampered)
		add("401 tampered body", http.MethodPost, h, tampered, http.StatusUnauthorized)
		wrong := verifytest.WrongSecret("evt_wrong"+sfx, now, "/", body)
		lc.request("wrong secret", keys, wrong.Header, body)
		add("401 wrong secret", http.MethodPost, wrong.Header, body, http.StatusUnauthorized)
		stale := verifytest.StaleTimestamp(secret, "evt_stale"+sfx, now, verify.DefaultTolerance, "/", body)
		lc.request("stale", keys, stale.Header, body)
		add("401 stale", http.MethodPost, stale.Header, body, http.StatusUnauthorized)
		// A minute past the bound, not FutureTimestamp's one second: the
		// header holds whole seconds, and the requests sent before this
		// one take long enough under -race to eat a one-second margin.
		future := verifytest.FutureTimestamp(secret, "evt_future"+sfx, now.Add(time.Minute), verify.DefaultTolerance, "/", body)
		lc.request("future", keys, future.Header, body)
		add("401 future", http.MethodPost, future.Header, body, http.StatusUnauthorized)
		// A legacy body signature, not enabled: 401 (or 400) without echo.
		m := hmac.New(sha256.New, key)
		m.Write(body)
		legacy := base64.StdEncoding.EncodeToString(m.Sum(nil))
		lc.add("legacy body MAC", legacy)
		add("legacy body signature not enabled", http.MethodPost, http.Header{"X-Staircase-Signature": {"sha256=" + legacy}}, body, 0)

		for _, tc := range cases {
			req, err := http.NewRequest(tc.method, srv.URL, bytes.NewReader(tc.body))
			require.NoError(t, err)
			req.Header = tc.h.Clone()
			resp := do(t, req)
			if tc.status != 0 {
				assert.Equal(t, tc.status, resp.StatusCode, tc.name)
			} else {
				assert.GreaterOrEqual(t, resp.StatusCode, 400, tc.name)
			}
			lc.response(t, tc.name, resp)
		}

		// 409 in flight, then 200 duplicate.
		h = signed("evt_inflight"+sfx, body)
		h.Set("X-Block", "1")
		done := make(chan *response)
		go func() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
			req.Header = h.Clone()
			done <- do(t, req)
		}()
		<-entered
		h2 := signed("evt_inflight"+sfx, body)
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		req.Header = h2
		resp := do(t, req)
		assert.Equal(t, http.StatusConflict, resp.StatusCode)
		lc.response(t, "409 in flight", resp)
		block <- struct{}{}
		resp = <-done
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		req, _ = http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		req.Header = signed("evt_inflight"+sfx, body)
		resp = do(t, req)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "true", resp.Header.Get(verify.DuplicateHeader))
		lc.response(t, "200 duplicate", resp)

		// 503 store failure (the error names the store's failure).
		failing.fail.Store(true)
		req, _ = http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		req.Header = signed("evt_store"+sfx, body)
		resp = do(t, req)
		failing.fail.Store(false)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		lc.response(t, "503 store", resp)
		srv.Close()
	}

	lc.check(t, "default OnError log", logs.String())
	assert.Contains(t, logs.String(), "evt_tampered", "the default OnError logged the rejections")
	errMu.Lock()
	lc.check(t, "OnError errors", strings.Join(errs, "\n"))
	assert.NotEmpty(t, errs)
	errMu.Unlock()
}

// failStore is a store that fails every call while fail is set.
type failStore struct {
	verify.Store
	fail atomic.Bool
}

func (s *failStore) Reserve(ctx context.Context, key string, ttl time.Duration) (verify.Reservation, verify.State, error) {
	if s.fail.Load() {
		return verify.Reservation{}, 0, errors.New("connection refused (test)")
	}
	return s.Store.Reserve(ctx, key, ttl)
}

func do(t testing.TB, req *http.Request) *response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	return &response{StatusCode: resp.StatusCode, Header: resp.Header, Body: readAllString(resp.Body)}
}

// echoJira is a Jira that answers every request 401 with a body echoing the
// Authorization header it received, and the token decoded from it, as a
// careless proxy might.
func echoJira(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		_, tok, _ := r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("WWW-Authenticate", "Basic realm=\"jira\"")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"errorMessages": []string{"Authorization " + auth + " is not valid", "token " + tok + " revoked"},
			"errors":        map[string]string{"auth": auth},
		})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestLeakReceiver runs the receiver server's failure paths, in inline
// mode and on the queued path, with the signed requests, sink failures
// that tempt an echo of credentials (a Jira 401 whose body repeats the
// Authorization header, an SMTP AUTH failure), and checks responses,
// headers, log lines, the sender's errors, and the dead letters: the
// dead-letter file in inline mode; on the queued path the dead letters as
// the queue and `stairhook deadletter list` show them, and the database
// files themselves.
func TestLeakReceiver(t *testing.T) {
	t.Parallel()
	lc := newLeakCheck()
	lc.add("jira API token", jiraToken)
	lc.add("jira basic auth", base64.StdEncoding.EncodeToString([]byte(jiraEmail+":"+jiraToken)))
	lc.add("smtp password", smtpPassword)
	const wrongPassword = "smtp-wrong-Hk5Ty8Pq"
	lc.add("smtp password (configured, wrong)", wrongPassword)
	lc.add("smtp AUTH PLAIN", base64.StdEncoding.EncodeToString([]byte("\x00"+smtpUser+"\x00"+wrongPassword)))

	type rigCase struct {
		name string
		o    rigOptions
	}
	rigs := []rigCase{
		{"jira 401 echoing Authorization", rigOptions{JiraURL: "echo"}},
		{"smtp auth failure", rigOptions{SMTPPassword: wrongPassword}},
		{"jira 500 and smtp 421", rigOptions{}},
	}
	for _, queued := range []bool{false, true} {
		mode := "inline"
		if queued {
			mode = "queued"
		}
		for _, rc := range rigs {
			t.Run(mode+"/"+rc.name, func(t *testing.T) {
				t.Parallel()
				o := rc.o
				o.Queued = queued
				if o.JiraURL == "echo" {
					o.JiraURL = echoJira(t)
				}
				r := newRig(t, o)
				key := lc.secret("webhook secret", r.secret)
				keys := [][]byte{key}
				if rc.name == "jira 500 and smtp 421" {
					r.jira.FailNext(10, http.StatusInternalServerError, "")
					r.smtp.FailNext(10, 421)
				}
				post := func(what, id string, h http.Header, body []byte) *response {
					lc.request(what, keys, h, body)
					resp := postRaw(t, r.url, h, body)
					lc.response(t, rc.name+": "+what, resp)
					return resp
				}
				now := time.Now()
				ev := eventBody(t, event.TypeChurnRisk, "evt_leak_sink", nil)
				resp := post("sink failure", "evt_leak_sink", verifytest.SignedHeaders(r.secret, "evt_leak_sink", now, ev), ev)
				if queued {
					assert.Equal(t, http.StatusAccepted, resp.StatusCode, resp.Body)
				} else {
					assert.Contains(t, []int{http.StatusUnprocessableEntity, http.StatusServiceUnavailable}, resp.StatusCode, resp.Body)
				}

				bad := []byte(`{"id":"evt_leak_bad","type":"x"`)
				resp = post("bad event", "evt_leak_bad", verifytest.SignedHeaders(r.secret, "evt_leak_bad", now, bad), bad)
				assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
				other := eventBody(t, event.TypeRenewal, "evt_other", nil)
				resp = post("id mismatch", "evt_leak_mm", verifytest.SignedHeaders(r.secret, "evt_leak_mm", now, other), other)
				assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
				assert.Equal(t, "id_mismatch", code(t, resp.Body))
				h := verifytest.SignedHeaders(r.secret, "evt_leak_unknown", now, ev)
				lc.request("unknown webhook", keys, h, ev)
				resp = postRaw(t, strings.TrimSuffix(r.url, webhookName)+"nosuch", h, ev)
				assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "answered as a wrong signature")
				lc.response(t, "unknown webhook", resp)
				tampered := bytes.Replace(ev, []byte("Acme"), []byte("Acne"), 1)
				resp = post("tampered", "evt_leak_t", verifytest.SignedHeaders(r.secret, "evt_leak_sink", now, ev), tampered)
				assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
				wrong := verifytest.WrongSecret("evt_leak_w", now, "/", ev)
				resp = post("wrong secret", "evt_leak_w", wrong.Header, ev)
				assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

				// The sender's errors and report: after its retries run
				// out in inline mode, after the 202 on the queued path.
				rep, err := newSender(2).Send(t.Context(), r.endpoint(), "evt_leak_send", eventBody(t, event.TypeRenewal, "evt_leak_send", nil))
				if queued {
					require.NoError(t, err)
				} else {
					require.Error(t, err)
					lc.check(t, "sender error", err.Error())
				}
				for _, a := range rep.Attempts {
					lc.check(t, "sender attempt body", string(a.Body))
					if a.Err != nil {
						lc.check(t, "sender attempt error", a.Err.Error())
					}
				}

				if queued {
					for _, d := range r.waitDeliveredOrDead(t) {
						lc.check(t, rc.name+": dead letter "+d.Sink, d.Error)
					}
					db := r.srv.Queue().Location().SQLitePath
					out, err := exec.Command(stairhookBinary(t), "deadletter", "list", "--store", "sqlite:"+db).CombinedOutput()
					require.NoError(t, err, "%s", out)
					lc.check(t, rc.name+": deadletter list", string(out))
					for _, f := range []string{db, db + "-wal"} {
						if data, err := os.ReadFile(f); err == nil {
							lc.check(t, rc.name+": database file "+filepath.Base(f), string(data))
						}
					}
				}
				lc.check(t, rc.name+": server log", r.logs.String())
				if data, err := os.ReadFile(filepath.Join(r.outbox, receiver.DeadLetterFile)); err == nil {
					lc.check(t, rc.name+": dead-letter file", string(data))
				}
			})
		}
	}
}

// TestLeakCLI runs the stairhook binary's failure paths and checks its
// standard output and error.
func TestLeakCLI(t *testing.T) {
	t.Parallel()
	bin := stairhookBinary(t)
	lc := newLeakCheck()
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	key := lc.secret("secret", secret)
	keys := [][]byte{key}
	// A secret that is almost valid: one base64 character short.
	almost := secret.Encode()[:len(secret.Encode())-2] + "="
	lc.add("invalid secret text", almost)
	lc.add("jira token in config", jiraToken)

	run := func(name string, stdin []byte, env []string, args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Stdin = bytes.NewReader(stdin)
		cmd.Env = append(os.Environ(), "STAIRHOOK_SECRET=", "STAIRHOOK_CONFIG=", "STAIRHOOK_STORE=")
		cmd.Env = append(cmd.Env, env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err, name)
		}
		lc.check(t, "stairhook "+name, out.String())
		return out.String(), code
	}

	body := eventBody(t, event.TypeRenewal, "evt_cli", nil)
	now := time.Now()
	hdrArgs := func(h http.Header) []string {
		var a []string
		for k, vs := range h {
			for _, v := range vs {
				a = append(a, "-H", k+": "+v)
			}
		}
		return a
	}
	senv := []string{"LEAK_SECRET=" + secret.Encode()}
	h := verifytest.SignedHeaders(secret, "evt_cli", now, body)
	tampered := bytes.Replace(body, []byte("Acme"), []byte("Acne"), 1)
	lc.request("cli tampered", keys, h, tampered)
	_, rc := run("verify tampered", tampered, senv, append([]string{"verify", "--secret-env", "LEAK_SECRET"}, hdrArgs(h)...)...)
	assert.Equal(t, 1, rc)
	wrong := verifytest.WrongSecret("evt_cli", now, "/", body)
	lc.request("cli wrong secret", keys, wrong.Header, body)
	_, rc = run("verify wrong secret", body, senv, append([]string{"verify", "--secret-env", "LEAK_SECRET"}, hdrArgs(wrong.Header)...)...)
	assert.Equal(t, 1, rc)
	stale := verifytest.StaleTimestamp(secret, "evt_cli", now, verify.DefaultTolerance, "/", body)
	lc.request("cli stale", keys, stale.Header, body)
	_, rc = run("verify stale", body, senv, append([]string{"verify", "--secret-env", "LEAK_SECRET"}, hdrArgs(stale.Header)...)...)
	assert.Equal(t, 1, rc)
	// The secret on the command line, as --secret.
	_, rc = run("verify --secret tampered", tampered, nil, append([]string{"verify", "--secret", secret.Encode()}, hdrArgs(h)...)...)
	assert.Equal(t, 1, rc)
	// An invalid secret is never echoed.
	_, rc = run("verify invalid secret", body, nil, append([]string{"verify", "--secret", almost}, hdrArgs(h)...)...)
	assert.NotZero(t, rc)
	_, rc = run("sign invalid secret", body, []string{"LEAK_SECRET=" + almost}, "sign", "--secret-env", "LEAK_SECRET")
	assert.NotZero(t, rc)
	sf := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(sf, []byte(almost+"\n"), 0o600))
	_, rc = run("sign invalid secret file", body, nil, "sign", "--secret-file", sf)
	assert.NotZero(t, rc)

	// send to a receiver holding another secret: 401.
	r := newRig(t, rigOptions{})
	lc.secret("receiver secret", r.secret)
	out, rc := run("send rejected", nil, senv, "send", "--url", r.url, "--secret-env", "LEAK_SECRET", "--type", "churn_risk")
	assert.Equal(t, 1, rc, out)
	// send a body that the receiver rejects as an invalid event (signed
	// with the right secret).
	bf := filepath.Join(t.TempDir(), "body.json")
	require.NoError(t, os.WriteFile(bf, []byte(`{"id":"evt_cli_bad"}`), 0o600))
	out, rc = run("send invalid event", nil, []string{"RCV_SECRET=" + r.secret.Encode()}, "send", "--url", r.url, "--secret-env", "RCV_SECRET", "--body", bf)
	assert.Equal(t, 1, rc, out)

	// A database that cannot be reached, by URL with a password: the
	// errors of deadletter, migrate and serve never repeat it.
	const pgPassword = "pg-pass-Vb7Nc2Xk9Q"
	lc.add("postgres password", pgPassword)
	pgURL := "postgres://stairhook:" + pgPassword + "@" + testenv.Addr(testenv.FreePort(t)) + "/stairhook?sslmode=disable&connect_timeout=5"
	out, rc = run("deadletter list unreachable postgres", nil, nil, "deadletter", "list", "--store", pgURL)
	assert.Equal(t, 1, rc, out)
	out, rc = run("deadletter replay unreachable postgres", nil, nil, "deadletter", "replay", "--all", "--store", pgURL)
	assert.Equal(t, 1, rc, out)
	out, rc = run("migrate unreachable postgres", nil, []string{"STAIRHOOK_STORE=" + pgURL}, "migrate")
	assert.Equal(t, 1, rc, out)
	out, rc = run("serve unreachable postgres", nil, []string{"STAIRHOOK_SECRET=" + secret.Encode()}, "serve", "--addr", "127.0.0.1:0", "--store", pgURL)
	assert.Equal(t, 1, rc, out)
	_, rc = run("deadletter list malformed postgres URL", nil, nil, "deadletter", "list", "--store", "postgres://stairhook:"+pgPassword+"@[::1/x")
	assert.NotZero(t, rc)
	// A config whose store.postgres holds the password.
	pcfg := filepath.Join(t.TempDir(), "pg.yaml")
	require.NoError(t, os.WriteFile(pcfg, []byte(fmt.Sprintf(`store: {postgres: %q}
webhooks:
  - name: %s
    secrets: [{label: current, secret: "${LEAK_SECRET}"}]
    routes: [{email: {to: [a@example.com]}}]
`, pgURL, webhookName)), 0o600))
	out, rc = run("deadletter list config postgres", nil, senv, "deadletter", "list", "--config", pcfg)
	assert.Equal(t, 1, rc, out)
	out, rc = run("serve config postgres", nil, senv, "serve", "--config", pcfg, "--addr", "127.0.0.1:0")
	assert.Equal(t, 1, rc, out)

	// serve with a config whose values are wrong: the errors name the
	// fields, never the values.
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
jira: {base_url: "ftp://%s@example.com", email: "x", api_token: %q}
webhooks:
  - name: staircase
    secrets: [{label: current, secret: %q}]
    routes: [{jira: {project: CS}}]
`, jiraToken, jiraToken, almost)
	cf := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cf, []byte(cfg), 0o600))
	out, rc = run("serve bad config", nil, nil, "serve", "--config", cf, "--outbox", t.TempDir())
	assert.NotZero(t, rc, out)
	assert.Contains(t, out, "secret", "the error names the field")
	_, rc = run("serve bad env secret", nil, []string{"STAIRHOOK_SECRET=" + almost}, "serve", "--addr", "127.0.0.1:0")
	assert.NotZero(t, rc)
}
