package main

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/stairhook/stairhook/sender"
	"github.com/stairhook/stairhook/verify"
)

// signedHeaders is the order in which sign prints the headers.
var signedHeaders = []string{"X-Staircase-Id", "X-Staircase-Timestamp", "X-Staircase-Signature"}

// maxInlineBody bounds a body that sign --curl writes into the command
// itself: well under the 128 KiB a single argument may have on Linux.
const maxInlineBody = 64 << 10

// runSign implements "stairhook sign".
func runSign(_ context.Context, e *env, args []string) int {
	fs := newFlagSet("sign", "sign --secret S [--id ID] [--timestamp UNIX] [--body FILE] [--curl URL] [< body]", `
Sign the body of --body FILE (or standard input) and print the three
headers as "Name: value" lines, or with --curl a curl command that sends
the same bytes, ready to run as it is: with --body it reads the file
(--data-binary @FILE), otherwise the body is written into the command
(up to 64 KiB of printable text). The id defaults to the body's "id" field
when it is JSON (the receiver requires them equal), else evt_ and random
hex. A URL's password is never printed: curl asks for it.`)
	var sf secretFlags
	sf.register(fs)
	id := fs.String("id", "", "the event `ID` to sign (default: the body's id, else evt_<random>)")
	tsFlag := fs.String("timestamp", "", "sign at `UNIX` seconds instead of now")
	bodyFile := fs.String("body", "", "sign the bytes of `FILE` instead of standard input")
	curl := fs.String("curl", "", "print a curl command that POSTs to `URL` instead of the headers")
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	ts := time.Now()
	if *tsFlag != "" {
		n, err := strconv.ParseInt(*tsFlag, 10, 64)
		if err != nil || n < 0 {
			return usageError(e, fs, "--timestamp must be Unix seconds (decimal digits)")
		}
		ts = time.Unix(n, 0)
	}
	var target *url.URL
	if *curl != "" {
		u, err := parseURL(*curl)
		if err != nil {
			return usageError(e, fs, "--curl: "+err.Error())
		}
		target = u
	}
	secrets, err := sf.load(e)
	if err != nil {
		return usageError(e, fs, errText(err))
	}
	var body []byte
	if *bodyFile != "" {
		if body, err = readBounded(*bodyFile, maxBodyBytes); err != nil {
			return usageError(e, fs, "--body: "+err.Error())
		}
	} else if body, err = readAllBounded(e.stdin, maxBodyBytes); err != nil {
		return usageError(e, fs, "reading the body from standard input: "+err.Error())
	}
	if *id == "" {
		*id = sender.EventID(body)
	}
	if *id == "" {
		*id = newEventID()
	}
	signer, err := verify.NewSigner(secrets...)
	if err != nil {
		return usageError(e, fs, errText(err))
	}
	h, err := signer.Sign(*id, ts, body)
	if err != nil {
		return usageError(e, fs, "--id: "+errText(err))
	}
	if target == nil {
		for _, name := range signedHeaders {
			fmt.Fprintf(e.stdout, "%s: %s\n", name, h.Get(name))
		}
		return exitOK
	}
	data := ""
	if *bodyFile != "" {
		abs, err := filepath.Abs(*bodyFile)
		if err != nil {
			return usageError(e, fs, "--body: "+err.Error())
		}
		data = "--data-binary " + shellQuote("@"+abs)
	} else {
		if len(body) > maxInlineBody || !printableText(body) {
			return usageError(e, fs, "--curl writes a body from standard input into the command only when it is printable text of at most 64 KiB: give this one with --body FILE")
		}
		data = "--data-raw " + shellQuote(string(body))
	}
	var b strings.Builder
	b.WriteString("curl -sS -X POST " + shellQuote(withoutUser(target)) + " \\\n")
	if target.User != nil {
		// curl asks for the password when --user has none.
		user := target.User.Username()
		if _, set := target.User.Password(); !set {
			user += ":" // a user alone, with an empty password, as in the URL
		}
		b.WriteString("  --user " + shellQuote(user) + " \\\n")
	}
	b.WriteString("  -H " + shellQuote("Content-Type: application/json") + " \\\n")
	for _, name := range signedHeaders {
		b.WriteString("  -H " + shellQuote(name+": "+h.Get(name)) + " \\\n")
	}
	b.WriteString("  " + data + "\n")
	fmt.Fprint(e.stdout, b.String())
	fmt.Fprintf(e.stderr, "# run it within the receiver's tolerance (5 min by default) of %d\n", ts.Unix())
	return exitOK
}

// withoutUser is u without its user and password, which sign passes to
// curl's --user instead so the password is never printed.
func withoutUser(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// shellQuote quotes s for a POSIX shell: inside single quotes nothing is
// special except the single quote itself, written as '\”.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// parseURL parses an absolute http or https URL without control
// characters. Its errors never quote the URL, which may hold a password.
func parseURL(s string) (*url.URL, error) {
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return nil, fmt.Errorf("URL contains a control character")
		}
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("must be an absolute http or https URL")
	}
	// An "@" that net/url did not take as the end of the user information
	// (a password with an unescaped "/", "?" or "#" ends the host early)
	// would put the password into the path, and from there into the
	// terminal: refuse it.
	if u.User == nil && strings.Contains(s, "@") {
		return nil, fmt.Errorf("has an @ outside the user information: percent-encode the user and password (/ is %%2F, ? is %%3F, # is %%23, @ is %%40)")
	}
	return u, nil
}
