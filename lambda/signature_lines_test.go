package lambda_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sigHeader = "X-Staircase-Signature"

// linesPlaceholder stands for the signature header in a fixture until the
// test puts its lines in.
const linesPlaceholder = "SIGNATURE-LINES"

// withSignatureLines returns the named fixture carrying the signature header
// as the trigger would deliver two lines of it: joined with sep into one
// value by an HTTP API or Function URL, or as two values in the
// multiValueHeaders of a REST API or an ALB with multi-value headers.
func withSignatureLines(t testing.TB, name string, f fill, first, second, sep string) []byte {
	t.Helper()
	f.header = f.header.Clone()
	f.header.Set(sigHeader, linesPlaceholder)
	ev := string(fixture(t, name, f))
	lines, err := json.Marshal([]string{first, second})
	require.NoError(t, err)
	// Multi-value map first: its placeholder is inside an array.
	ev = strings.ReplaceAll(ev, `["`+linesPlaceholder+`"]`, string(lines))
	joined, err := json.Marshal(first + sep + second)
	require.NoError(t, err)
	ev = strings.ReplaceAll(ev, `"`+linesPlaceholder+`"`, string(joined))
	require.NotContains(t, ev, linesPlaceholder)
	return []byte(ev)
}

// TestSignatureLines checks that a sender rotating its secret, sending one
// signature line per secret, is verified behind every trigger that passes
// both lines, as over HTTP: one line is signed with a secret the receiver
// no longer has, the other with its secret, in either order. HTTP APIs and
// Function URLs join the lines with commas into one value.
func TestSignatureLines(t *testing.T) {
	const id = "evt_two_lines"
	body := eventBody(id, 0)
	valid := signedFill(t, testSecret, id, fixedNow, body)
	retired := signedFill(t, otherSecret, id, fixedNow, body).header.Get(sigHeader)
	current := valid.header.Get(sigHeader)
	tampered := append([]byte(nil), body...)
	tampered[len(tampered)-3] = ']'

	orders := []struct {
		name          string
		first, second string
	}{
		{"valid line first", current, retired},
		{"valid line last", retired, current},
		// Standard Webhooks' asymmetric entry, of a version v1 receivers
		// ignore, on a line of its own.
		{"v1a line last", current, "v1a," + strings.Repeat("QUJD", 21) + "QQ=="},
		{"v1a line first", "v1a," + strings.Repeat("QUJD", 21) + "QQ==", current},
	}

	// The reference: two lines over HTTP verify.
	for _, o := range orders {
		t.Run("HTTP/"+o.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/webhooks/staircase", bytes.NewReader(body))
			for k, v := range valid.header {
				r.Header[k] = v
			}
			r.Header[sigHeader] = []string{o.first, o.second}
			w := httptest.NewRecorder()
			echoHandler(t).ServeHTTP(w, r)
			assert.Equal(t, http.StatusOK, w.Code, w.Body.String())
		})
	}

	// AWS joins with a bare comma; a space after it is accepted too. The
	// multi-value events carry the lines apart, so no separator applies.
	const comma, commaSpace, apart = ",", ", ", ""
	sepName := map[string]string{comma: "comma", commaSpace: "comma and space", apart: "lines apart"}
	triggers := []struct {
		name string
		seps []string
	}{
		{"http-api-v2", []string{comma, commaSpace}},
		{"http-api-v2-base64", []string{comma}},
		{"function-url", []string{comma, commaSpace}},
		{"function-url-base64", []string{comma}},
		{"apigw-v1-multivalue", []string{apart}},
		{"alb-multivalue", []string{apart}},
	}
	for _, tr := range triggers {
		for _, sep := range tr.seps {
			for _, o := range orders {
				t.Run(tr.name+"/"+o.name+"/"+sepName[sep], func(t *testing.T) {
					r := invokeOK(t, echoHandler(t), withSignatureLines(t, tr.name, valid, o.first, o.second, sep))
					require.Equalf(t, http.StatusOK, r.StatusCode, "body %s", r.Body)
					var got echo
					require.NoError(t, json.Unmarshal(r.bodyBytes(t), &got))
					assert.Equal(t, "current", got.KeyLabel)

					r = invokeOK(t, echoHandler(t), withSignatureLines(t, tr.name, fill{valid.header, tampered}, o.first, o.second, sep))
					assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
					assert.Equal(t, "no_matching_signature", r.errorCode(t))
				})
			}
		}
	}
}

// TestJoinedHeadersUntouched checks what the handler sees: only the
// signature header of an HTTP API or Function URL event has its entries
// separated again; another header with the same text keeps its commas, and
// an ALB without multi-value headers, which never joins lines, is passed
// as it came.
func TestJoinedHeadersUntouched(t *testing.T) {
	const joined = "v1,AAA=,v1,BBB="
	var got http.Header
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header })
	headers := map[string]string{"x-staircase-signature": joined, "webhook-signature": joined, "x-custom": joined, "accept": "a,v2,b"}

	for _, name := range []string{"http-api-v2", "function-url"} {
		t.Run(name, func(t *testing.T) {
			got = nil
			ev := v2Event(t, "POST", "/", headers, "", false)
			if name == "function-url" {
				ev = bytes.Replace(ev, []byte(`"api.example.com"`), []byte(`"abc.lambda-url.us-east-1.on.aws"`), 1)
			}
			invokeOK(t, h, ev)
			require.NotNil(t, got)
			assert.Equal(t, []string{"v1,AAA= v1,BBB="}, got.Values(sigHeader))
			assert.Equal(t, []string{"v1,AAA= v1,BBB="}, got.Values("Webhook-Signature"))
			assert.Equal(t, []string{joined}, got.Values("X-Custom"))
			assert.Equal(t, []string{"a,v2,b"}, got.Values("Accept"))
		})
	}

	t.Run("alb", func(t *testing.T) {
		got = nil
		f := signedFill(t, testSecret, "evt_alb", fixedNow, []byte("{}"))
		f.header.Set(sigHeader, joined)
		invokeOK(t, h, fixture(t, "alb", f))
		require.NotNil(t, got)
		assert.Equal(t, []string{joined}, got.Values(sigHeader))
	})
}

// TestSignatureLinesInOneValueStillChecked checks that separating the
// entries adds no way in: a joined value whose entries are all wrong is
// still refused, as is an entry whose value holds a second v1 entry.
func TestSignatureLinesInOneValueStillChecked(t *testing.T) {
	const id = "evt_lines_checked"
	body := eventBody(id, 0)
	valid := signedFill(t, testSecret, id, fixedNow, body)
	current := valid.header.Get(sigHeader)
	retired := signedFill(t, otherSecret, id, fixedNow, body).header.Get(sigHeader)

	cases := []struct {
		name   string
		value  string
		status int
		code   string
	}{
		{"two wrong lines", retired + "," + retired, http.StatusUnauthorized, "no_matching_signature"},
		// One line "v1,v1,<mac>": the comma after the version is not a separator.
		{"v1 entry inside a value", "v1," + current, http.StatusBadRequest, "malformed_header"},
		{"malformed line beside a valid one", current + ",v1,not-base64!", http.StatusBadRequest, "malformed_header"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := fill{valid.header.Clone(), body}
			f.header.Set(sigHeader, c.value)
			r := invokeOK(t, echoHandler(t), fixture(t, "http-api-v2", f))
			assert.Equal(t, c.status, r.StatusCode)
			assert.Equal(t, c.code, r.errorCode(t))
		})
	}
}
