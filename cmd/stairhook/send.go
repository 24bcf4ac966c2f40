package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/sender"
	"github.com/stairhook/stairhook/verify"
)

// runSend implements "stairhook send".
func runSend(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet("send", "send --url URL --secret S [--type churn_risk] [--account NAME] [--test] [--body FILE] [--id ID] [--retries N] [--timeout D]", `
Sign and POST one event, as the sender's "Test notification" does, and
print the status, duration and response body of each attempt. Without
--body the event is the receiver's sample of --type with a fresh id; with
--body FILE that file is sent byte for byte. --retries follows the sender's
retry schedule (5 s, 5 min, 30 min, 2 h, each ±10%).

Types: `+strings.Join(event.SampleTypes(), ", "))
	var sf secretFlags
	sf.register(fs)
	target := fs.String("url", "", "the receiver's webhook `URL`, for example http://127.0.0.1:8080/webhooks/staircase")
	typ := fs.String("type", event.TypeChurnRisk, "the sample signal `TYPE` to send")
	account := fs.String("account", "", "replace the sample's account name with `NAME`")
	test := fs.Bool("test", false, `mark the sample as a test notification ("test": true)`)
	bodyFile := fs.String("body", "", "send the bytes of `FILE` instead of a sample")
	id := fs.String("id", "", "the event `ID` (default: a fresh evt_… for a sample; the body's id for --body)")
	retries := fs.Int("retries", 0, "retry up to `N` times on a retryable failure, on the sender's schedule (at most 4)")
	timeout := fs.Duration("timeout", sender.DefaultTimeout, "`D`, the time allowed for each attempt")
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	if *target == "" {
		return usageError(e, fs, "--url is required")
	}
	u, err := parseURL(*target)
	if err != nil {
		return usageError(e, fs, "--url: "+err.Error())
	}
	shownURL := u.Redacted() // a user:password@ is for basic authentication, not for the terminal
	schedule := sender.DefaultSchedule()
	if *retries < 0 || *retries >= len(schedule) {
		return usageError(e, fs, fmt.Sprintf("--retries must be between 0 and %d", len(schedule)-1))
	}
	if *timeout <= 0 {
		return usageError(e, fs, "--timeout must be positive")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *bodyFile != "" && (set["type"] || set["account"] || set["test"]) {
		return usageError(e, fs, "--body sends a file as it is: it cannot be combined with --type, --account or --test")
	}
	if *bodyFile == "" && !slices.Contains(event.SampleTypes(), *typ) {
		return usageError(e, fs, fmt.Sprintf("--type %q has no sample; one of: %s", safeArg(*typ), strings.Join(event.SampleTypes(), ", ")))
	}
	secrets, err := sf.load(e)
	if err != nil {
		return usageError(e, fs, errText(err))
	}

	if *id != "" {
		// Refuse a bad id before printing or sending anything.
		signer, err := verify.NewSigner(secrets...)
		if err != nil {
			return usageError(e, fs, errText(err))
		}
		if _, err := signer.Sign(*id, time.Now(), nil); err != nil {
			return usageError(e, fs, "--id: "+errText(err))
		}
	}

	var body []byte
	if *bodyFile != "" {
		if body, err = readBounded(*bodyFile, maxBodyBytes); err != nil {
			return usageError(e, fs, "--body: "+err.Error())
		}
		inBody := sender.EventID(body)
		switch {
		case *id == "" && inBody != "":
			*id = inBody
		case *id == "":
			*id = newEventID() // not an event with an id: the receiver will say what it thinks of it
		case inBody != "" && inBody != *id:
			return usageError(e, fs, "--id differs from the body's id, which a receiver refuses (400 id_mismatch); "+
				"leave --id out to send the body's, or use sign --id ID --body FILE --curl URL to send a mismatch on purpose")
		}
	} else {
		if *id == "" {
			*id = newEventID()
		}
		if body, err = sampleBody(*typ, *id, *account, *test, time.Now()); err != nil {
			return failf(e, "send", "building the %s sample: %v", *typ, err)
		}
	}

	attempts := schedule[:*retries+1]
	var duplicate bool
	var status int
	s := sender.New(sender.Options{
		Timeout:  *timeout,
		Schedule: attempts,
		Sleep: func(ctx context.Context, d time.Duration) error {
			fmt.Fprintf(e.stdout, "retrying in %v\n", d.Round(100*time.Millisecond))
			return sender.Sleep(ctx, d)
		},
		OnAttempt: func(a sender.Attempt) {
			duplicate, status = a.Duplicate, a.Status
			printAttempt(e.stdout, a)
		},
	})
	fmt.Fprintf(e.stdout, "POST %s id %s (%d bytes)\n", shownURL, *id, len(body))
	rep, err := s.Send(ctx, sender.Endpoint{URL: *target, Secrets: secrets}, *id, body)
	switch {
	case err == nil && status == http.StatusAccepted:
		// The receiver has it, durably, and delivers it later: not
		// "delivered" yet.
		fmt.Fprintf(e.stdout, "accepted %s in %d attempt(s): queued by the receiver for delivery\n", rep.ID, len(rep.Attempts))
		return exitOK
	case err == nil:
		fmt.Fprintf(e.stdout, "delivered %s in %d attempt(s)%s\n", rep.ID, len(rep.Attempts), duplicateNote(duplicate))
		return exitOK
	case errors.Is(err, sender.ErrInvalidID), errors.Is(err, sender.ErrIDMismatch):
		// Checked above; kept so a change there cannot turn a usage
		// error into a failed delivery.
		return usageError(e, fs, "--id: "+errText(err))
	case errors.Is(err, sender.ErrGaveUp) && *retries == 0:
		return failf(e, "send", "not delivered: %v (--retries N retries on the sender's schedule)", err)
	default:
		return failf(e, "send", "not delivered: %v", err)
	}
}

// duplicateNote is what the attempt and final lines add for an answer
// marked as a duplicate: the receiver did not process the event again.
func duplicateNote(duplicate bool) string {
	if duplicate {
		return " (duplicate: already processed)"
	}
	return ""
}

// printAttempt prints one attempt: status line, then the response body.
func printAttempt(w io.Writer, a sender.Attempt) {
	d := durationText(a.Duration)
	if a.Status == 0 {
		fmt.Fprintf(w, "attempt %d: no response after %v: %v\n", a.Number, d, a.Err)
		return
	}
	fmt.Fprintf(w, "attempt %d: %d %s in %v%s\n", a.Number, a.Status, statusText(a.Status), d, duplicateNote(a.Duplicate))
	if len(a.Body) > 0 {
		fmt.Fprintf(w, "%s\n", printable(a.Body))
	}
	if a.Truncated {
		fmt.Fprintf(w, "(response body cut at %d bytes)\n", len(a.Body))
	}
}

// durationText shows short durations in milliseconds with one decimal.
func durationText(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return d.Round(time.Millisecond).String()
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "status " + strconv.Itoa(code)
}

// printable returns b for a terminal: as it is when it is printable text,
// else quoted, so a receiver's answer cannot drive the terminal.
func printable(b []byte) string {
	b = bytes.TrimRight(b, "\r\n")
	if printableText(b) {
		return string(b)
	}
	return strconv.Quote(string(b))
}

// printableText reports whether b is UTF-8 text whose only control
// characters are tab and newline: safe to print on a terminal as it is.
func printableText(b []byte) bool {
	return utf8.Valid(b) && !bytes.ContainsFunc(b, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' })
}

// sampleBody returns the receiver's sample of typ with the given id, the
// current time, the test flag and, when account is set, that account name
// (also in the signal's title and summary, where the sample names it).
func sampleBody(typ, id, account string, test bool, now time.Time) ([]byte, error) {
	raw, err := event.Sample(typ)
	if err != nil {
		return nil, err
	}
	var ev map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		return nil, err
	}
	ev["id"] = id
	ev["test"] = test
	ev["created_at"] = now.UTC().Format(time.RFC3339)
	if account != "" {
		if acc, ok := ev["account"].(map[string]any); ok {
			old, _ := acc["name"].(string)
			acc["name"] = account
			if sig, ok := ev["signal"].(map[string]any); ok && old != "" {
				for _, k := range []string{"title", "summary"} {
					if s, ok := sig[k].(string); ok {
						sig[k] = strings.ReplaceAll(s, old, account)
					}
				}
			}
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(ev); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
