// Command bootstrap runs the stairhook receiver (the server of
// `stairhook serve`: verified webhooks routed to Jira, email or the dry-run
// sinks) as an AWS Lambda function on the provided.al2023 runtime, behind a
// Function URL, API Gateway or an ALB.
//
// Build it for Lambda with
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -o bootstrap ./lambda/cmd/bootstrap
//
// and see examples/lambda for a SAM template and the deployment steps.
//
// The configuration comes from the environment variable STAIRHOOK_CONFIG,
// the same YAML as `stairhook serve --config`, given either as the path of a
// file in the deployment package or inline: a value that contains a newline
// or starts with "{" (YAML flow style, or JSON) is the configuration itself.
// ${VAR} references in it are expanded from the environment, which is where
// secrets belong. Without STAIRHOOK_CONFIG, STAIRHOOK_SECRET (a whsec_
// secret) gives the default configuration of `stairhook serve`: one webhook
// at POST /webhooks/staircase routed to the dry-run sinks.
//
// Only /tmp is writable on Lambda, so a relative outbox (the folder of the
// dry-run sinks and of deadletter.jsonl, "./stairhook-outbox" by default)
// is placed under the temporary directory. It lives only as long as the
// execution environment: configure real sinks, and a Redis store for
// replay protection across instances, for production.
//
// The receiver runs in inline mode (receiver.ServerOptions.Inline): the
// sinks run inside the invocation, since no process outlives it to work a
// queue; a permanent failure is answered 422 with a dead letter in the
// outbox.
//
// Logs are JSON lines (log/slog) on stderr, which Lambda sends to CloudWatch.
// A configuration error stops the function during its init phase.
package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/stairhook/stairhook/lambda"
	"github.com/stairhook/stairhook/receiver"
	"github.com/stairhook/stairhook/verify"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	slog.SetDefault(log)
	cfg, err := loadConfig(os.LookupEnv, os.TempDir())
	if err != nil {
		log.Error("stairhook: cannot load the configuration", "error", err.Error())
		os.Exit(1)
	}
	srv, err := newServer(cfg, log)
	if err != nil {
		log.Error("stairhook: cannot start the receiver", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(srv.Handler())
}

// newServer builds the receiver the function serves: inline mode, since no
// process outlives an invocation to work a queue.
func newServer(cfg *receiver.Config, log *slog.Logger) (*receiver.Server, error) {
	return receiver.NewServer(cfg, receiver.ServerOptions{Logger: log, Inline: true})
}

// errNoConfig means neither STAIRHOOK_CONFIG nor STAIRHOOK_SECRET is set.
var errNoConfig = errors.New("set STAIRHOOK_CONFIG (a config file path or inline YAML) or STAIRHOOK_SECRET (a whsec_ secret for the default dry-run configuration)")

// loadConfig reads the configuration as the package doc describes, and
// places a relative outbox under tmp. A config file expands ${VAR} from the
// process environment (receiver.LoadConfig), inline YAML from lookupEnv.
func loadConfig(lookupEnv func(string) (string, bool), tmp string) (*receiver.Config, error) {
	var (
		cfg *receiver.Config
		err error
	)
	src, _ := lookupEnv("STAIRHOOK_CONFIG")
	switch {
	case inline(src):
		cfg, err = receiver.ParseConfig([]byte(src), lookupEnv)
	case src != "":
		cfg, err = receiver.LoadConfig(src)
	default:
		secret, ok := lookupEnv("STAIRHOOK_SECRET")
		if !ok || secret == "" {
			return nil, errNoConfig
		}
		if _, err := verify.ParseSecret(secret); err != nil {
			return nil, errors.New("STAIRHOOK_SECRET: " + err.Error())
		}
		cfg = receiver.DefaultConfig(secret, "", "")
	}
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(cfg.Outbox) {
		cfg.Outbox = filepath.Join(tmp, cfg.Outbox)
	}
	return cfg, nil
}

// inline reports whether STAIRHOOK_CONFIG holds the configuration itself
// rather than a path: no path contains a newline or starts with "{".
func inline(src string) bool {
	return strings.Contains(src, "\n") || strings.HasPrefix(strings.TrimSpace(src), "{")
}
