package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/stairhook/stairhook/verify"
)

// maxBodyBytes bounds every body read from standard input or a file. It is
// ten times the receiver's default cap, so oversized bodies can be tested.
const maxBodyBytes = 10 << 20

// maxSecretFileBytes bounds a --secret-file.
const maxSecretFileBytes = 4 << 10

// defaultSecretEnv is the variable read when no secret flag is given.
const defaultSecretEnv = "STAIRHOOK_SECRET"

// secretList is a repeatable flag whose String never shows the values, so
// neither --help nor an error can print a secret.
type secretList []string

func (s *secretList) String() string { return "" }

func (s *secretList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// secretFlags are the secret sources every signing or verifying command
// takes.
type secretFlags struct {
	values secretList
	env    string
	file   string
}

func (s *secretFlags) register(fs *flag.FlagSet) {
	fs.Var(&s.values, "secret", "the webhook secret `S` (whsec_…); repeat it to use several during a rotation.\nOther local users can see it in the process list: prefer --secret-env or --secret-file")
	fs.StringVar(&s.env, "secret-env", defaultSecretEnv, "read the secret from the environment variable `NAME` when neither --secret nor --secret-file is given")
	fs.StringVar(&s.file, "secret-file", "", "read the secret from `PATH` (surrounding white space ignored)")
}

var errNoSecret = errors.New("no secret")

// load returns the secrets, from the flags, else the file, else the
// environment. Errors name the source, never the value.
func (s *secretFlags) load(e *env) ([]verify.Secret, error) {
	var out []verify.Secret
	for i, v := range s.values {
		sec, err := verify.ParseSecret(v)
		if err != nil {
			return nil, fmt.Errorf("--secret #%d: %w", i+1, err)
		}
		out = append(out, sec)
	}
	if s.file != "" {
		b, err := readBounded(s.file, maxSecretFileBytes)
		if err != nil {
			return nil, fmt.Errorf("--secret-file: %w", err)
		}
		sec, err := verify.ParseSecret(string(b))
		if err != nil {
			return nil, fmt.Errorf("--secret-file %s: %w", s.file, err)
		}
		out = append(out, sec)
	}
	if len(out) > 0 {
		return out, nil
	}
	if s.env == "" {
		return nil, fmt.Errorf("%w: give --secret, --secret-file or --secret-env NAME", errNoSecret)
	}
	v := e.getenv(s.env)
	if v == "" {
		return nil, fmt.Errorf("%w: give --secret or --secret-file, or set %s", errNoSecret, s.env)
	}
	sec, err := verify.ParseSecret(v)
	if err != nil {
		return nil, fmt.Errorf("$%s: %w", s.env, err)
	}
	return []verify.Secret{sec}, nil
}

// readBounded reads at most limit bytes of the file at path; a longer file
// is an error rather than silently cut.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, pathError(path, err)
	}
	defer f.Close()
	return readAllBounded(f, limit)
}

func readAllBounded(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("longer than %d bytes", limit)
	}
	return b, nil
}

// pathError is err without the path it quotes when the path could be a
// secret given to a file flag by mistake (--secret-file whsec_…): it holds
// whsec_ or is a secret's text. Other paths are shown, to say which file.
func pathError(path string, err error) error {
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return err
	}
	if _, parseErr := verify.ParseSecret(path); parseErr != nil && !strings.Contains(path, verify.SecretPrefix) {
		return err
	}
	return fmt.Errorf("%s (path not shown): %w", pe.Op, pe.Err)
}

// newEventID returns "evt_" and 24 random hex digits.
func newEventID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return "evt_" + hex.EncodeToString(b[:])
}

// errText is an error's text without the package prefix of verify and
// sender errors, for messages meant for a person.
func errText(err error) string {
	return strings.TrimPrefix(strings.TrimPrefix(err.Error(), "verify: "), "sender: ")
}
