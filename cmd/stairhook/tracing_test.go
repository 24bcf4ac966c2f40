package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// collector is an OTLP/HTTP endpoint that keeps the spans it is sent.
type collector struct {
	*httptest.Server
	mu       sync.Mutex
	names    []string
	traces   map[string]bool
	services map[string]bool
}

func newCollector(t *testing.T) *collector {
	c := &collector{traces: map[string]bool{}, services: map[string]bool{}}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" ||
			err != nil || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not an OTLP/HTTP trace export", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					c.services[a.GetValue().GetStringValue()] = true
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					c.names = append(c.names, s.Name)
					c.traces[string(s.TraceId)] = true
				}
			}
		}
		c.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *collector) spans() (names []string, traces int, services []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s := range c.services {
		services = append(services, s)
	}
	return append([]string(nil), c.names...), len(c.traces), services
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, serve sends its spans to that
// collector: the accepted event's trace, its accept and both dry-run
// sinks' attempts, all out by the time serve has stopped.
func TestServeExportsTraces(t *testing.T) {
	col := newCollector(t)
	// The exporter reads the process's environment; serve decides from its
	// own (the same, outside tests).
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col.URL)
	f := newFixture(t)
	outbox := t.TempDir()
	environ := map[string]string{"STAIRHOOK_SECRET": f.text, "OTEL_EXPORTER_OTLP_ENDPOINT": col.URL}
	s := startServe(t, environ, "--outbox", outbox, "--store", tempStore(t))
	assert.Contains(t, s.stdout.String(), "traces: OTLP/HTTP to "+col.URL+"\n")

	r := invoke(t, environ, "", "send", "--url", "http://"+s.addr+"/webhooks/staircase", "--body", bodyFile(t, "evt_traced"))
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	require.True(t, eventually(func() bool {
		return hasOutboxFile(t, outbox, "jira", "evt_traced") && hasOutboxFile(t, outbox, "email", "evt_traced")
	}), "the dry runs of evt_traced: %v", outboxFiles(t, outbox))
	require.Equal(t, exitOK, s.stop(t))

	names, traces, services := col.spans()
	assert.ElementsMatch(t, []string{"stairhook.accept", "stairhook.deliver", "stairhook.deliver"}, names)
	assert.Equal(t, 1, traces, "one trace for the event")
	assert.Equal(t, []string{"stairhook"}, services)
	assert.NotContains(t, s.stderr.String(), "tracing:", "no export failed")
}

// Tracing is off unless an OTLP endpoint is set, and stays off when the
// standard variables say so; what serve cannot honour is a usage error.
func TestTracingSetup(t *testing.T) {
	const ep = "http://127.0.0.1:4318"
	for _, c := range []struct {
		name    string
		environ map[string]string
		on      bool
		err     string // a regexp, "" for none
	}{
		{"nothing set", nil, false, ""},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep}, true, ""},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ep + "/v1/traces"}, true, ""},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_SDK_DISABLED": "true"}, false, ""},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_TRACES_EXPORTER": "none"}, false, ""},
		{"exporter otlp", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_TRACES_EXPORTER": "otlp"}, true, ""},
		{"protocol http/protobuf", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, true, ""},
		// Only the protocol named does not turn tracing on.
		{"protocol without endpoint", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, ""},
		{"protocol grpc", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, `"grpc" is not supported`},
		{"traces protocol json", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, false, `"http/json" is not supported`},
		{"exporter zipkin", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_TRACES_EXPORTER": "zipkin"}, false, `"zipkin" is not supported`},
		{"endpoint without scheme", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318"}, false, `must be an http:// or https:// URL`},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := &env{lookupEnv: func(k string) (string, bool) { v, ok := c.environ[k]; return v, ok }}
			tr, err := setupTracing(context.Background(), e, slog.New(slog.DiscardHandler))
			if c.err != "" {
				assert.Regexp(t, regexp.MustCompile(c.err), err)
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, c.on, tr != nil)
			if tr != nil {
				tr.shutdown(slog.New(slog.DiscardHandler))
			}
		})
	}

	t.Run("serve", func(t *testing.T) {
		r := invoke(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			"", "serve", "--addr", "127.0.0.1:0", "--admin-addr", "off", "--store", tempStore(t))
		assert.Equal(t, exitUsage, r.code)
		assert.Contains(t, r.stderr, "OTEL_EXPORTER_OTLP_PROTOCOL")

		s := startServe(t, nil, "--outbox", t.TempDir(), "--store", tempStore(t))
		assert.NotContains(t, s.stdout.String(), "traces:", "off without an endpoint")
		assert.Equal(t, exitOK, s.stop(t))
	})
}
