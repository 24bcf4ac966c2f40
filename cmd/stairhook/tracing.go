package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// tracingShutdownTimeout bounds the last export of spans at exit.
const tracingShutdownTimeout = 5 * time.Second

// tracing is the trace pipeline of `stairhook serve`.
type tracing struct {
	provider *sdktrace.TracerProvider
	// to is where the spans go, for the start-up line: the endpoint's
	// scheme and host only (its path or query may hold a token).
	to string
}

// setupTracing sets up `stairhook serve`'s traces when the standard
// OpenTelemetry environment asks for them, and returns nil when it does
// not: tracing is off unless OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
// OTEL_EXPORTER_OTLP_ENDPOINT is set, and stays off with
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
//
// The exporter is OTLP over HTTP (protobuf); it reads the rest of the
// standard variables itself (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT,
// _COMPRESSION, _CERTIFICATE…), from the process's environment, as do
// the SDK (OTEL_TRACES_SAMPLER, OTEL_BSP_*) and the resource
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES; the service name is
// "stairhook" by default).
func setupTracing(ctx context.Context, e *env, log *slog.Logger) (*tracing, error) {
	if strings.EqualFold(strings.TrimSpace(e.getenv("OTEL_SDK_DISABLED")), "true") {
		return nil, nil
	}
	switch x := strings.TrimSpace(e.getenv("OTEL_TRACES_EXPORTER")); x {
	case "", "otlp":
	case "none":
		return nil, nil
	default:
		return nil, fmt.Errorf("$OTEL_TRACES_EXPORTER: %q is not supported: otlp or none", x)
	}
	endpoint := firstNonEmpty(e.getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), e.getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
	if endpoint == "" {
		return nil, nil
	}
	switch p := firstNonEmpty(e.getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), e.getenv("OTEL_EXPORTER_OTLP_PROTOCOL")); p {
	case "", "http/protobuf":
	default:
		return nil, fmt.Errorf("$OTEL_EXPORTER_OTLP_PROTOCOL: %q is not supported: http/protobuf (the collector's port 4318)", p)
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errors.New("$OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) must be an http:// or https:// URL, such as http://localhost:4318")
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("the OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(semconv.ServiceName("stairhook"), semconv.ServiceVersion(moduleVersion())),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // after the defaults, so OTEL_SERVICE_NAME wins
	)
	if err != nil {
		// A malformed OTEL_RESOURCE_ATTRIBUTES: the rest still holds.
		log.Warn("tracing: the resource is partial", "error", err.Error())
	}
	// The SDK reports a failed export here: a JSON line, as every log line.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing: spans not exported", "error", err.Error())
	}))
	return &tracing{
		provider: sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)),
		to:       u.Scheme + "://" + u.Host,
	}, nil
}

// shutdown exports the spans still buffered and stops the pipeline.
func (t *tracing) shutdown(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), tracingShutdownTimeout)
	defer cancel()
	if err := t.provider.Shutdown(ctx); err != nil {
		log.Warn("tracing: the last spans were not exported", "error", err.Error())
	}
}

// moduleVersion is the main module's version, as --version shows it.
func moduleVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}
