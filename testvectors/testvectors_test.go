package testvectors_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/testvectors"
)

func TestLoad(t *testing.T) {
	f, err := testvectors.Load()
	if err != nil {
		t.Fatal(err)
	}
	if f.NumberOfTests < 100 {
		t.Fatalf("only %d vectors, want at least 100", f.NumberOfTests)
	}
	for i, v := range f.Tests {
		if v.TcID != i+1 {
			t.Fatalf("vector %d has tcId %d, want consecutive ids from 1", i, v.TcID)
		}
		if _, err := v.Body(); err != nil {
			t.Errorf("tcId %d: %v", v.TcID, err)
		}
		for _, k := range v.Keys {
			if (k.Secret == "") == (k.RawBase64 == "") {
				t.Errorf("tcId %d: key %q must have exactly one of secret and rawBase64", v.TcID, k.Label)
			}
		}
	}
}

func TestParseRejectsDamage(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":  `{"scheme":"staircase-webhook-signature","version":1,"numberOfTests":0,"tests":[],"extra":1}`,
		"wrong scheme":   `{"scheme":"other","version":1,"numberOfTests":0,"tests":[]}`,
		"wrong version":  `{"scheme":"staircase-webhook-signature","version":2,"numberOfTests":0,"tests":[]}`,
		"wrong count":    `{"scheme":"staircase-webhook-signature","version":1,"numberOfTests":2,"tests":[{"tcId":1}]}`,
		"duplicate tcId": `{"scheme":"staircase-webhook-signature","version":1,"numberOfTests":2,"tests":[{"tcId":1},{"tcId":1}]}`,
		"not JSON":       `{`,
		"trailing data":  `{"scheme":"staircase-webhook-signature","version":1,"numberOfTests":0,"tests":[]} {}`,
		"trailing byte":  `{"scheme":"staircase-webhook-signature","version":1,"numberOfTests":0,"tests":[]}x`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := testvectors.Parse([]byte(doc)); err == nil || !strings.HasPrefix(err.Error(), "testvectors: ") {
				t.Fatalf("Parse = %v, want a testvectors error", err)
			}
		})
	}
}

func TestBytesIsTheFile(t *testing.T) {
	f, err := testvectors.Parse(testvectors.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.Scheme != testvectors.Scheme {
		t.Fatalf("scheme %q", f.Scheme)
	}
}

func TestParseAcceptsTrailingWhiteSpace(t *testing.T) {
	f, err := testvectors.Parse([]byte(`{"scheme":"staircase-webhook-signature","version":1,"numberOfTests":0,"tests":[]}` + " \n\t\r\n"))
	require.NoError(t, err)
	assert.Equal(t, testvectors.Scheme, f.Scheme)
}
