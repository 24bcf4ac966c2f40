package teams

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
)

// adaptiveCardsEnv names the environment variable that holds the folder of
// the extracted npm package adaptivecards@3.0.6, the one holding
// dist/adaptivecards.js: Microsoft's own Adaptive Card parser, which
// testdata/validate.js runs in Node to check our cards. (No version of the
// package ships the Adaptive Card JSON schema.)
const adaptiveCardsEnv = "STAIRHOOK_ADAPTIVECARDS"

// adaptiveCardsInstall says how .ci/run puts the parser in place.
const adaptiveCardsInstall = `see .ci/run, step "install: Adaptive Card parser"; or npm pack adaptivecards@3.0.6 && tar xzf adaptivecards-3.0.6.tgz && export ` +
	adaptiveCardsEnv + `=$PWD/package`

// cardValidator runs testdata/validate.js, which checks the envelope and
// parses the card with the adaptivecards package.
type cardValidator struct {
	node, script, pkg, dir string
}

// loadValidator returns the validator, skipping the test when node or the
// package is missing (failing it under STAIRHOOK_E2E).
func loadValidator(t testing.TB) *cardValidator {
	t.Helper()
	node := testenv.Binary(t, "node", `see .ci/run, step "install: Debian packages" (nodejs)`)
	pkg, missing := findAdaptiveCards()
	if missing != "" {
		testenv.Missing(t, missing, adaptiveCardsInstall)
	}
	return newValidator(t, node, pkg)
}

// optionalValidator is the validator when node and the package are both
// found, else nil: the HTTP tests run either way, and the tests that need
// the validator report its absence.
func optionalValidator(t testing.TB) *cardValidator {
	t.Helper()
	node, ok := testenv.LookBinary("node")
	pkg, missing := findAdaptiveCards()
	if !ok || missing != "" {
		return nil
	}
	return newValidator(t, node, pkg)
}

// findAdaptiveCards returns the package folder named by adaptiveCardsEnv,
// or what is missing.
func findAdaptiveCards() (pkg, missing string) {
	pkg = os.Getenv(adaptiveCardsEnv)
	if pkg == "" {
		return "", "the npm package adaptivecards ($" + adaptiveCardsEnv + ")"
	}
	if _, err := os.Stat(filepath.Join(pkg, "dist", "adaptivecards.js")); err != nil {
		return "", "the npm package adaptivecards at " + pkg
	}
	return pkg, ""
}

func newValidator(t testing.TB, node, pkg string) *cardValidator {
	script, err := filepath.Abs(filepath.Join("testdata", "validate.js"))
	require.NoError(t, err)
	return &cardValidator{node: node, script: script, pkg: pkg, dir: t.TempDir()}
}

// cardProblem is one thing validate.js found wrong: an event of the
// parser (phase Parse, Validation or ToJSON, event as the package names
// it), a property toJSON dropped (phase ToJSON, event Dropped), or a wrong
// envelope (phase Envelope).
type cardProblem struct {
	Phase, Event, Message, Path string
}

// invalidCardError is a message the validator rejected.
type invalidCardError struct {
	problems []cardProblem
}

func (e *invalidCardError) Error() string {
	var b strings.Builder
	b.WriteString("the adaptivecards parser rejects the card:")
	for _, p := range e.problems {
		fmt.Fprintf(&b, "\n\t%s %s: %s", p.Phase, p.Event, p.Message)
		if p.Path != "" {
			fmt.Fprintf(&b, " (at %s)", p.Path)
		}
	}
	return b.String()
}

// has reports whether the validator found a problem of this phase and
// event.
func (e *invalidCardError) has(phase, event string) bool {
	return slices.ContainsFunc(e.problems, func(p cardProblem) bool { return p.Phase == phase && p.Event == event })
}

// validate checks messages (or bare cards) in one run of validate.js and
// returns one error per input, nil for a valid one, each an
// *invalidCardError otherwise; err is a failure to run the validator. It
// is safe for concurrent use.
func (v *cardValidator) validate(msgs ...[]byte) (results []error, err error) {
	dir, err := os.MkdirTemp(v.dir, "run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	args := []string{v.script}
	for i, m := range msgs {
		p := filepath.Join(dir, fmt.Sprintf("%d.json", i))
		if err := os.WriteFile(p, m, 0o600); err != nil {
			return nil, err
		}
		args = append(args, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, v.node, args...)
	cmd.Env = append(os.Environ(), adaptiveCardsEnv+"="+v.pkg)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var exit *exec.ExitError
	if runErr != nil && !(errors.As(runErr, &exit) && exit.ExitCode() == 1) {
		return nil, fmt.Errorf("validate.js: %v: %s", runErr, stderr.Bytes())
	}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct {
			OK       bool
			Problems []cardProblem
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("validate.js: report %q: %v", sc.Bytes(), err)
		}
		if r.OK != (len(r.Problems) == 0) {
			return nil, fmt.Errorf("validate.js: report %q contradicts itself", sc.Bytes())
		}
		if r.OK {
			results = append(results, nil)
		} else {
			results = append(results, &invalidCardError{r.Problems})
		}
	}
	if len(results) != len(msgs) || (runErr == nil) != (errors.Join(results...) == nil) {
		return nil, fmt.Errorf("validate.js: %d reports for %d inputs, %v: %s%s", len(results), len(msgs), runErr, stdout.Bytes(), stderr.Bytes())
	}
	return results, nil
}

// requireValid fails the test unless the validator accepts every message;
// a nil validator checks nothing.
func (v *cardValidator) requireValid(t testing.TB, msgs ...[]byte) {
	t.Helper()
	if v == nil {
		return
	}
	results, err := v.validate(msgs...)
	require.NoError(t, err)
	for i, err := range results {
		require.NoError(t, err, "%s", msgs[i])
	}
}
