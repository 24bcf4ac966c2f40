package lambda_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver"
	"github.com/stairhook/stairhook/receiver/jiratest"
)

const rieInstall = "go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// invocationsPath is where the emulator takes invocations, as the Lambda
// Invoke API does.
const invocationsPath = "/2015-03-31/functions/function/invocations"

// buildBootstrap builds lambda/cmd/bootstrap for the host, as the function
// is built for Lambda (static, -tags lambda.norpc).
func buildBootstrap(tb testing.TB) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", out, "./cmd/bootstrap")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build ./lambda/cmd/bootstrap: %v\n%s", err, msg)
	}
	return out
}

// startEmulator runs the bootstrap under aws-lambda-rie on free loopback
// ports with env added to the environment, and returns the invocation URL.
// testenv.StartServer starts it again on fresh ports if one it was given
// got taken before the emulator bound it. The emulator is stopped by its
// process id when the test ends.
func startEmulator(tb testing.TB, env ...string) string {
	tb.Helper()
	rie := testenv.Binary(tb, "aws-lambda-rie", rieInstall)
	bootstrap := buildBootstrap(tb)
	var logs *testenv.Buffer
	ports, proc := testenv.StartServer(tb, 2, func(ports []int) *exec.Cmd {
		cmd := exec.Command(rie,
			"--runtime-interface-emulator-address", testenv.Addr(ports[0]),
			"--runtime-api-address", testenv.Addr(ports[1]),
			bootstrap)
		cmd.Dir = filepath.Dir(bootstrap)
		cmd.Env = append(os.Environ(), env...)
		cmd.Env = append(cmd.Env, "AWS_LAMBDA_FUNCTION_TIMEOUT=30", "LOG_LEVEL=warn")
		logs = &testenv.Buffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		return cmd
	}, func(ports []int) error {
		c, err := net.DialTimeout("tcp", testenv.Addr(ports[0]), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	// Runs before testenv's SIGKILL: on SIGTERM the emulator kills the
	// runtime it started (in a process group of its own) and waits for it,
	// so no orphan is left behind. testenv's SIGKILL follows if it has not
	// exited by then.
	tb.Cleanup(func() {
		_ = proc.Signal(syscall.SIGTERM)
		select {
		case <-proc.Exited():
		case <-time.After(5 * time.Second):
		}
		if tb.Failed() {
			tb.Logf("emulator and function output:\n%s", logs.String())
		}
	})
	return "http://" + testenv.Addr(ports[0]) + invocationsPath
}

// invokeEmulator posts one event to the emulator and returns the
// function's response document.
func invokeEmulator(tb testing.TB, url string, payload []byte) []byte {
	tb.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(payload))
	require.NoError(tb, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	require.NoError(tb, err)
	require.Equalf(tb, http.StatusOK, resp.StatusCode, "emulator answered %s", out)
	return out
}

// e2eConfig is the receiver configuration the function gets inline in
// STAIRHOOK_CONFIG; secrets come from the environment.
func e2eConfig(outbox, jiraURL string) string {
	jira := ""
	if jiraURL != "" {
		jira = fmt.Sprintf("jira: {base_url: %q, email: jira@example.com, api_token: \"${JIRA_API_TOKEN}\"}\n", jiraURL)
	}
	return fmt.Sprintf(`outbox: %q
%swebhooks:
  - name: staircase
    secrets: [{label: current, secret: "${STAIRHOOK_SECRET}"}]
    tolerance: 5m
    routes:
      - name: tickets
        jira: {project: CS, issue_type: Task, labels: [staircase]}
`, outbox, jira)
}

// TestEmulator runs the real bootstrap under the AWS Lambda Runtime
// Interface Emulator: every trigger's event verifies and reaches the Jira
// test server, a tampered one is rejected, and a redelivery creates nothing.
func TestEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the bootstrap")
	}
	jira := jiratest.NewServer(jiratest.Options{Projects: []string{"CS"}})
	t.Cleanup(jira.Close)
	url := startEmulator(t,
		"STAIRHOOK_CONFIG="+e2eConfig(t.TempDir(), jira.URL),
		"STAIRHOOK_SECRET="+testSecret.Encode(),
		"JIRA_API_TOKEN="+jira.APIToken,
	)

	var firstPayload []byte
	for i, name := range triggerFixtures {
		t.Run(name, func(t *testing.T) {
			id := fmt.Sprintf("evt_e2e_%d", i)
			payload := fixture(t, name, signedFill(t, testSecret, id, time.Now(), eventBody(id, 0)))
			if firstPayload == nil {
				firstPayload = payload
			}
			out := invokeEmulator(t, url, payload)
			r := parseReply(t, out)
			require.Equalf(t, http.StatusOK, r.StatusCode, "function answered %s", out)
			var d struct {
				Sinks []struct{ Name, Outcome string }
			}
			require.NoError(t, json.Unmarshal(r.bodyBytes(t), &d))
			require.Len(t, d.Sinks, 1)
			assert.Equal(t, "delivered", d.Sinks[0].Outcome)
			switch {
			case strings.HasPrefix(name, "alb"):
				assert.Equal(t, "200 OK", r.StatusDescription)
			case strings.HasPrefix(name, "apigw-v1"):
				assert.NotNil(t, r.MultiValueHeaders)
			default:
				assert.NotNil(t, r.Cookies, "a 2.0 answer has a cookies array")
			}
		})
	}

	t.Run("tampered", func(t *testing.T) {
		body := eventBody("evt_e2e_tampered", 0)
		f := signedFill(t, testSecret, "evt_e2e_tampered", time.Now(), body)
		f.body = bytes.Replace(body, []byte(`"high"`), []byte(`"low!"`), 1)
		r := parseReply(t, invokeEmulator(t, url, fixture(t, "function-url-base64", f)))
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
		assert.Equal(t, "no_matching_signature", r.errorCode(t))
	})
	t.Run("wrong secret", func(t *testing.T) {
		f := signedFill(t, otherSecret, "evt_e2e_wrong", time.Now(), eventBody("evt_e2e_wrong", 0))
		r := parseReply(t, invokeEmulator(t, url, fixture(t, "alb", f)))
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
	})
	t.Run("redelivered", func(t *testing.T) {
		require.NotNil(t, firstPayload)
		r := parseReply(t, invokeEmulator(t, url, firstPayload))
		assert.Equal(t, http.StatusOK, r.StatusCode)
	})
	t.Run("not an HTTP event", func(t *testing.T) {
		out := invokeEmulator(t, url, []byte(`{"Records":[]}`))
		var e struct{ ErrorMessage, ErrorType string }
		require.NoError(t, json.Unmarshal(out, &e))
		assert.Contains(t, e.ErrorMessage, "not an HTTP event")
		assert.Equal(t, "unknownEventError", e.ErrorType)
	})

	issues := jira.Issues()
	require.Len(t, issues, len(triggerFixtures), "one issue per genuine event, none for the rejected or redelivered ones")
	var summaries []string
	for _, is := range issues {
		assert.Equal(t, "CS", is.Project)
		assert.Contains(t, is.Labels, "staircase")
		summaries = append(summaries, is.Summary)
	}
	assert.True(t, slices.ContainsFunc(summaries, func(s string) bool { return strings.Contains(s, `Zoë & <Acme> "Corp"`) }),
		"the account name reached Jira byte for byte: %q", summaries)
}

// signedEvent is what the latency benchmarks send: a 1 KiB event with a
// fresh id (a repeated one would be answered as a duplicate), signed now.
func signedEvent(tb testing.TB, i int) fill {
	id := fmt.Sprintf("evt_bench_%d_%d", time.Now().UnixNano(), i)
	return signedFill(tb, testSecret, id, time.Now(), eventBody(id, 1024))
}

// BenchmarkEmulatorInvoke measures a warm invocation of the bootstrap
// under the emulator: a 1 KiB signed event in a Function URL event, through
// the Runtime API, the adapter, the verify middleware and the dry-run
// sinks. It reports the median beside the mean.
func BenchmarkEmulatorInvoke(b *testing.B) {
	url := startEmulator(b,
		"STAIRHOOK_CONFIG="+e2eConfig(b.TempDir(), ""),
		"STAIRHOOK_SECRET="+testSecret.Encode(),
	)
	warm := signedEvent(b, -1)
	invokeEmulator(b, url, fixture(b, "function-url-base64", warm)) // init
	var times []time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		f := signedEvent(b, i)
		payload := fixture(b, "function-url-base64", f)
		i++
		b.StartTimer()
		start := time.Now()
		out := invokeEmulator(b, url, payload)
		times = append(times, time.Since(start))
		if !bytes.Contains(out, []byte(`"statusCode":200`)) {
			b.Fatalf("function answered %s", out)
		}
	}
	reportMedian(b, times)
}

// BenchmarkServerHTTP is the same delivery through the receiver server
// over loopback HTTP, as `stairhook serve` runs it.
func BenchmarkServerHTTP(b *testing.B) {
	t := b.TempDir()
	cfg, err := receiver.ParseConfig([]byte(e2eConfig(t, "")), func(k string) (string, bool) {
		return testSecret.Encode(), k == "STAIRHOOK_SECRET"
	})
	require.NoError(b, err)
	srv, err := receiver.NewServer(cfg, receiver.ServerOptions{Logger: discardLogger(), Inline: true})
	require.NoError(b, err)
	ts := httptest.NewServer(srv.Handler())
	b.Cleanup(ts.Close)
	url := ts.URL + "/webhooks/staircase"
	post := func(f fill) {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(f.body))
		require.NoError(b, err)
		for k, v := range f.header {
			req.Header[k] = v
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(b, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("server answered %d", resp.StatusCode)
		}
	}
	warm := signedEvent(b, -1)
	post(warm)
	var times []time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		f := signedEvent(b, i)
		i++
		b.StartTimer()
		start := time.Now()
		post(f)
		times = append(times, time.Since(start))
	}
	reportMedian(b, times)
}

func reportMedian(b *testing.B, times []time.Duration) {
	if len(times) == 0 {
		return
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds()), "median-µs")
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
