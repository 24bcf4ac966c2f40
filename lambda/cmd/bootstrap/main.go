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
// the same YAML as `stairhook serve --config`, given either inline or as
// the path of a file in the deployment package, by one rule: a value of
// one line that starts with "/", "./" or "../" is a path (such as
// /var/task/config.yaml); any other value is the configuration itself
// (YAML in block or flow style, or JSON). Errors never quote the value,
// which may hold a secret. ${VAR} references in the configuration are
// expanded from the environment, which is where secrets belong. Without
// STAIRHOOK_CONFIG, STAIRHOOK_SECRET (a whsec_ secret) gives the default
// configuration of `stairhook serve`: one webhook at POST
// /webhooks/staircase routed to the dry-run sinks.
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
	"fmt"
	"io"
	"io/fs"
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

// maxConfigBytes bounds a config file; receiver.ParseConfig has the same
// cap.
const maxConfigBytes = 1 << 20

// loadConfig reads the configuration as the package doc describes, and
// places a relative outbox under tmp. ${VAR} references are expanded from
// lookupEnv, in a file as inline.
func loadConfig(lookupEnv func(string) (string, bool), tmp string) (*receiver.Config, error) {
	var (
		cfg *receiver.Config
		err error
	)
	src, _ := lookupEnv("STAIRHOOK_CONFIG")
	switch {
	case src == "":
		secret, ok := lookupEnv("STAIRHOOK_SECRET")
		if !ok || secret == "" {
			return nil, errNoConfig
		}
		if _, err := verify.ParseSecret(secret); err != nil {
			return nil, errors.New("STAIRHOOK_SECRET: " + err.Error())
		}
		cfg = receiver.DefaultConfig(secret, "", "")
	case isPath(src):
		var data []byte
		if data, err = readConfigFile(src); err == nil {
			if cfg, err = receiver.ParseConfig(data, lookupEnv); err != nil {
				err = fmt.Errorf("STAIRHOOK_CONFIG (a file):\n%w", err)
			}
		}
	default:
		if cfg, err = receiver.ParseConfig([]byte(src), lookupEnv); err != nil {
			err = fmt.Errorf("STAIRHOOK_CONFIG (inline YAML; a file path starts with /, ./ or ../):\n%w", err)
		}
	}
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(cfg.Outbox) {
		cfg.Outbox = filepath.Join(tmp, cfg.Outbox)
	}
	return cfg, nil
}

// isPath reports whether STAIRHOOK_CONFIG names a file rather than holding
// the configuration: one line starting with /, ./ or ../. No configuration
// starts so, and the rule does not depend on the file existing.
func isPath(src string) bool {
	return !strings.ContainsAny(src, "\r\n") &&
		(strings.HasPrefix(src, "/") || strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../"))
}

// readConfigFile reads the config file at path, at most maxConfigBytes
// (one more, for ParseConfig to refuse). Its errors keep the reason (and
// os.ErrNotExist and the like for errors.Is) but not the path: the value of
// STAIRHOOK_CONFIG is never quoted.
func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("STAIRHOOK_CONFIG: cannot open the config file: %w", withoutPath(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("STAIRHOOK_CONFIG: cannot read the config file: %w", withoutPath(err))
	}
	return data, nil
}

// withoutPath is the reason of a *fs.PathError without the path it quotes.
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
