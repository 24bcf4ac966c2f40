package lambda_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/verify"
)

// fixedNow is the clock of every verifier in the unit tests; fixtures are
// signed at it unless a case says otherwise.
var fixedNow = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// testSecret is the webhook secret of the tests; otherSecret is a wrong one.
var (
	testSecret  = mustSecret("whsec_c3RhaXJob29rLWxhbWJkYS10ZXN0LXNlY3JldC0wMQ==")
	otherSecret = mustSecret("whsec_c29tZW9uZS1lbHNlcy1zZWNyZXQtbm90LXRoZS1vbmU=")
)

func mustSecret(s string) verify.Secret {
	sec, err := verify.ParseSecret(s)
	if err != nil {
		panic(err)
	}
	return sec
}

// triggerFixtures names every file in testdata/; each is a real event shape
// with placeholders for the signature headers and the body.
var triggerFixtures = []string{
	"apigw-v1",
	"apigw-v1-base64",
	"apigw-v1-multivalue",
	"http-api-v2",
	"http-api-v2-base64",
	"function-url",
	"function-url-base64",
	"alb",
	"alb-base64",
	"alb-multivalue",
}

// base64Fixtures are the fixtures whose body is marked isBase64Encoded.
var base64Fixtures = map[string]bool{
	"apigw-v1-base64":     true,
	"http-api-v2-base64":  true,
	"function-url-base64": true,
	"alb-base64":          true,
	"alb-multivalue":      true,
}

// fill is what goes into a fixture's placeholders: {{ID}}, {{TIMESTAMP}}
// and {{SIGNATURE}} take the header values, {{BODY}} the body as a JSON
// string, {{BODY_BASE64}} the body in standard base64.
type fill struct {
	header http.Header
	body   []byte
}

// signedFill signs body with secret, id and ts, as a sender would.
func signedFill(t testing.TB, secret verify.Secret, id string, ts time.Time, body []byte) fill {
	t.Helper()
	s, err := verify.NewSigner(secret)
	require.NoError(t, err)
	h, err := s.Sign(id, ts, body)
	require.NoError(t, err)
	return fill{header: h, body: body}
}

// fixture returns the named testdata event with its placeholders filled.
func fixture(t testing.TB, name string, f fill) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	require.NoError(t, err)
	r := strings.NewReplacer(
		"{{ID}}", jsonText(f.header.Get("X-Staircase-Id")),
		"{{TIMESTAMP}}", jsonText(f.header.Get("X-Staircase-Timestamp")),
		"{{SIGNATURE}}", jsonText(f.header.Get("X-Staircase-Signature")),
		"{{BODY}}", jsonText(string(f.body)),
		"{{BODY_BASE64}}", base64.StdEncoding.EncodeToString(f.body),
	)
	out := []byte(r.Replace(string(raw)))
	require.Truef(t, json.Valid(out), "testdata/%s.json is not valid JSON once filled", name)
	return out
}

// jsonText is s escaped for the inside of a JSON string.
func jsonText(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b[1 : len(b)-1])
}

// setField returns the event with one top-level field replaced.
func setField(t testing.TB, payload []byte, key string, value any) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(payload, &m))
	m[key] = value
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

// eventBody is a valid receiver event with the given id, padded to at least
// size bytes with text in the signal summary. Its text holds what a
// re-encoding would change: a non-ASCII letter, HTML characters, an escaped
// quote and newline, and a final newline.
func eventBody(id string, size int) []byte {
	head := `{"id":"` + id + `","type":"churn_risk","created_at":"2026-11-26T09:59:00Z","test":false,` +
		`"webhook":{"id":"wh_1","label":"Renewal Risk Escalation"},` +
		`"notification":{"id":"ntf_1","name":"Churn risk to Jira"},` +
		`"account":{"id":"acc_42","name":"Zoë & <Acme> \"Corp\"","domain":"acme.com","status":"active","staircase_url":"https://app.staircase.ai/accounts/acc_42"},` +
		`"signal":{"title":"Churn risk detected","summary":"Two escalations\nin one week`
	tail := `","severity":"high","sentiment":"negative","category":"risk","detected_at":"2026-11-26T09:58:00Z"}}` + "\n"
	pad := size - len(head) - len(tail)
	var b strings.Builder
	b.WriteString(head)
	for i := 0; b.Len() < len(head)+pad; i++ {
		b.WriteString(" signal " + strconv.Itoa(i) + ".")
	}
	b.WriteString(tail)
	return []byte(b.String())
}

// reply is every field of every response shape.
type reply struct {
	StatusCode        int                 `json:"statusCode"`
	StatusDescription string              `json:"statusDescription"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Cookies           []string            `json:"cookies"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
}

// bodyBytes returns the response body, base64-decoded when so marked.
func (r *reply) bodyBytes(t testing.TB) []byte {
	t.Helper()
	if !r.IsBase64Encoded {
		return []byte(r.Body)
	}
	b, err := base64.StdEncoding.DecodeString(r.Body)
	require.NoError(t, err)
	return b
}

// errorCode returns the code of a {"error":{"code":…}} answer.
func (r *reply) errorCode(t testing.TB) string {
	t.Helper()
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	require.NoErrorf(t, json.Unmarshal(r.bodyBytes(t), &e), "body %q", r.Body)
	return e.Error.Code
}

func parseReply(t testing.TB, out []byte) *reply {
	t.Helper()
	var r reply
	require.NoErrorf(t, json.Unmarshal(out, &r), "response %s", out)
	return &r
}
