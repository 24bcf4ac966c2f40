package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/stairhook/stairhook/verify"
)

// maxHeaderBytes bounds the header part of a --headers or --request file.
const maxHeaderBytes = 64 << 10

// headerList is the repeatable -H flag. Its String shows nothing: values
// carry signatures.
type headerList []string

func (h *headerList) String() string { return "" }

func (h *headerList) Set(v string) error {
	if _, _, err := splitHeader(v); err != nil {
		return err
	}
	*h = append(*h, v)
	return nil
}

// splitHeader splits "Name: value"; errors never quote the input.
func splitHeader(line string) (name, value string, err error) {
	name, value, ok := strings.Cut(line, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || !validToken(name) {
		return "", "", errors.New(`want "Name: value" with a valid header name`)
	}
	return name, strings.Trim(value, " \t\r"), nil
}

func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// runVerify implements "stairhook verify".
func runVerify(_ context.Context, e *env, args []string) int {
	fs := newFlagSet("verify", "verify --secret S [-H 'Name: value']... [--headers FILE] [--request FILE] [--now UNIX] [--tolerance SECONDS] < body", `
Verify a captured request: the headers from -H, a --headers file of
"Name: value" lines (as "stairhook sign" prints them) or a raw HTTP
request dump (--request, body included), and the body from standard input
exactly as received. Prints "valid: …" and exits 0, or prints "invalid:"
with the reason and a hint to standard error and exits 1.`)
	var sf secretFlags
	sf.register(fs)
	var hs headerList
	fs.Var(&hs, "H", "a request header `'Name: value'`; repeat for each header")
	headersFile := fs.String("headers", "", "read headers from `FILE`, one \"Name: value\" per line")
	requestFile := fs.String("request", "", "read a raw HTTP request dump, headers and body, from `FILE`")
	nowFlag := fs.String("now", "", "verify as if the time were `UNIX` seconds (for a request captured earlier)")
	tolerance := fs.Int("tolerance", 0, "accepted clock difference in `SECONDS`, both directions (default 300)")
	allowBody := fs.Bool("allow-body-signature", false, "also accept the legacy HMAC of the body alone (no replay protection)")
	allowDigest := fs.Bool("allow-secret-digest", false, "also accept the legacy SHA-256 of the secret text (proves nothing about the body)")
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	now := time.Now
	if *nowFlag != "" {
		n, err := strconv.ParseInt(*nowFlag, 10, 64)
		if err != nil || n < 0 {
			return usageError(e, fs, "--now must be Unix seconds (decimal digits)")
		}
		now = func() time.Time { return time.Unix(n, 0) }
	}
	if *tolerance < 0 {
		return usageError(e, fs, "--tolerance must not be negative")
	}
	secrets, err := sf.load(e)
	if err != nil {
		return usageError(e, fs, errText(err))
	}

	h := http.Header{}
	var body []byte
	if *requestFile != "" {
		req, b, err := readRequestFile(*requestFile)
		if err != nil {
			return usageError(e, fs, "--request: "+err.Error())
		}
		h, body = req, b
	}
	if *headersFile != "" {
		if err := readHeadersFile(*headersFile, h); err != nil {
			return usageError(e, fs, "--headers: "+err.Error())
		}
	}
	for _, line := range hs {
		name, value, _ := splitHeader(line) // checked by Set
		h.Add(name, value)
	}
	if *requestFile == "" {
		if body, err = readAllBounded(e.stdin, maxBodyBytes); err != nil {
			return usageError(e, fs, "reading the body from standard input: "+err.Error())
		}
	}

	keys := make([]verify.Key, len(secrets))
	for i, s := range secrets {
		keys[i] = verify.Key{Secret: s}
	}
	v, err := verify.NewVerifier(verify.Options{
		Keys:               keys,
		Tolerance:          time.Duration(*tolerance) * time.Second,
		Now:                now,
		AllowBodySignature: *allowBody,
		AllowSecretDigest:  *allowDigest,
	})
	if err != nil {
		return usageError(e, fs, errText(err))
	}
	res, err := v.Verify(h, body)
	if err != nil {
		fmt.Fprintf(e.stderr, "invalid: %s\n", errText(err))
		if hint := verifyHint(err); hint != "" {
			fmt.Fprintf(e.stderr, "hint: %s\n", hint)
		}
		return exitFail
	}
	switch res.Scheme {
	case verify.SchemeV1:
		age := now().Sub(res.Timestamp).Round(time.Second)
		when := fmt.Sprintf("%d s ago", int64(age/time.Second))
		if age < 0 {
			when = fmt.Sprintf("%d s in the future", int64(-age/time.Second))
		}
		fmt.Fprintf(e.stdout, "valid: key %s, id %s, signed %s (%s)\n", res.KeyLabel, res.ID, res.Timestamp.UTC().Format(time.RFC3339), when)
	default:
		fmt.Fprintf(e.stdout, "valid: key %s, legacy scheme %s (no signed id or timestamp: no replay protection)\n", res.KeyLabel, res.Scheme)
	}
	return exitOK
}

// verifyHint adds what to do next to the verifier's reason.
func verifyHint(err error) string {
	switch {
	case errors.Is(err, verify.ErrMissingSignature):
		return "no x-staircase-signature (or webhook-signature) header: pass the request's headers with -H 'Name: value', --headers FILE or --request FILE"
	case errors.Is(err, verify.ErrTimestampTooOld):
		return "a late delivery or a replay; to check a request captured earlier, pass --now with the time it arrived"
	case errors.Is(err, verify.ErrTimestampTooNew):
		return "the sender's clock is ahead of this one (or --now is too early)"
	case errors.Is(err, verify.ErrNoMatchingSignature):
		return "check the secret, and that the body is the raw bytes as received (no reformatting, no added newline: echo adds one, use printf or a file)"
	case errors.Is(err, verify.ErrMalformedHeader):
		return "the x-staircase-id, x-staircase-timestamp and x-staircase-signature headers must be as SPEC.md describes"
	}
	return ""
}

// readHeadersFile adds the "Name: value" lines of path to h. Blank lines
// and lines starting with # are skipped.
func readHeadersFile(path string, h http.Header) error {
	b, err := readBounded(path, maxHeaderBytes)
	if err != nil {
		return err
	}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i == 0 && (strings.HasSuffix(line, " HTTP/1.1") || strings.HasSuffix(line, " HTTP/1.0")) {
			return errors.New("the file starts with a request line: use --request for a raw HTTP request")
		}
		name, value, err := splitHeader(line)
		if err != nil {
			return fmt.Errorf("line %d: %w", i+1, err)
		}
		h.Add(name, value)
	}
	return nil
}

// readRequestFile parses a raw HTTP/1.x request dump with http.ReadRequest.
// A hand-made dump without Content-Length or chunked encoding has the rest
// of the file as its body.
func readRequestFile(path string) (http.Header, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, pathError(path, err)
	}
	defer f.Close()
	br := bufio.NewReader(io.LimitReader(f, maxHeaderBytes+maxBodyBytes+1))
	req, err := http.ReadRequest(br)
	if err != nil {
		// The parser's messages quote the offending line, which may hold a
		// signature: say what is expected instead.
		return nil, nil, errors.New("not an HTTP/1.x request: want a request line, header lines, a blank line, then the body")
	}
	defer req.Body.Close()
	var body []byte
	if req.ContentLength == 0 && len(req.TransferEncoding) == 0 && req.Header.Get("Content-Length") == "" {
		body, err = readAllBounded(br, maxBodyBytes)
	} else {
		body, err = readAllBounded(req.Body, maxBodyBytes)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, nil, errors.New("body: the file holds fewer bytes than Content-Length says")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("body: %w", err)
	}
	if bytes.Equal(body, []byte("\n")) || bytes.Equal(body, []byte("\r\n")) {
		body = nil // an editor's final newline after a request without body
	}
	return req.Header, body, nil
}
