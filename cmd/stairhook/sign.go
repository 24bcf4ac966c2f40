package main

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/stairhook/stairhook/verify"
)

// signedHeaders is the order in which sign prints the headers.
var signedHeaders = []string{"X-Staircase-Id", "X-Staircase-Timestamp", "X-Staircase-Signature"}

// runSign implements "stairhook sign".
func runSign(_ context.Context, e *env, args []string) int {
	fs := newFlagSet("sign", "sign --secret S [--id ID] [--timestamp UNIX] [--curl URL] < body", `
Sign the body read from standard input and print the three headers as
"Name: value" lines, or with --curl a ready curl command that sends the
same bytes from its standard input. The id defaults to the body's "id"
field when it is JSON (the receiver requires them equal), else evt_ and
random hex.`)
	var sf secretFlags
	sf.register(fs)
	id := fs.String("id", "", "the event `ID` to sign (default: the body's id, else evt_<random>)")
	tsFlag := fs.String("timestamp", "", "sign at `UNIX` seconds instead of now")
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
	if *curl != "" {
		if err := checkURL(*curl); err != nil {
			return usageError(e, fs, "--curl: "+err.Error())
		}
	}
	secrets, err := sf.load(e)
	if err != nil {
		return usageError(e, fs, errText(err))
	}
	body, err := readAllBounded(e.stdin, maxBodyBytes)
	if err != nil {
		return usageError(e, fs, "reading the body from standard input: "+err.Error())
	}
	if *id == "" {
		*id = bodyID(body)
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
		return usageError(e, fs, errText(err))
	}
	if *curl == "" {
		for _, name := range signedHeaders {
			fmt.Fprintf(e.stdout, "%s: %s\n", name, h.Get(name))
		}
		return exitOK
	}
	var b strings.Builder
	b.WriteString("curl -sS -X POST " + shellQuote(*curl) + " \\\n")
	b.WriteString("  -H " + shellQuote("Content-Type: application/json") + " \\\n")
	for _, name := range signedHeaders {
		b.WriteString("  -H " + shellQuote(name+": "+h.Get(name)) + " \\\n")
	}
	b.WriteString("  --data-binary @-\n")
	fmt.Fprint(e.stdout, b.String())
	fmt.Fprintf(e.stderr, "# feed it the exact same bytes on standard input, within the receiver's tolerance (5 min by default) of %d\n", ts.Unix())
	return exitOK
}

// shellQuote quotes s for a POSIX shell: inside single quotes nothing is
// special except the single quote itself, written as '\”.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// checkURL accepts absolute http and https URLs without control characters.
func checkURL(s string) error {
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("URL contains a control character")
		}
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an absolute http or https URL")
	}
	return nil
}
