// Package testvectors holds the shared test vectors of the Staircase webhook
// signature scheme (see SPEC.md at the root of the module). They lock the
// signer, the verifier and every port of the verifier to other languages
// together: an implementation is conforming when it returns the expected
// result, and for invalid cases the expected error, for every vector.
//
// The vectors live in vectors.json, produced by the generator program in
// internal/gen; nobody edits the JSON by hand. Go code reads them with
// [Load]; drivers in other languages read the file itself, also available
// as [Bytes].
package testvectors

//go:generate go run ./internal/gen -o vectors.json

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

//go:embed vectors.json
var raw []byte

// Scheme is the value of File.Scheme.
const Scheme = "staircase-webhook-signature"

// Values of Vector.Result.
const (
	ResultValid   = "valid"
	ResultInvalid = "invalid"
)

// File is the whole vectors.json.
type File struct {
	// Scheme is always "staircase-webhook-signature".
	Scheme string `json:"scheme"`
	// Version is the scheme version the vectors describe, 1.
	Version int `json:"version"`
	// NumberOfTests is len(Tests).
	NumberOfTests int `json:"numberOfTests"`
	// Tests is one flat list of cases, in tcId order.
	Tests []Vector `json:"tests"`
}

// Vector is one test case: a verifier configured with Keys and Options, at
// the instant Now, receives Headers and the body, and must return Result.
type Vector struct {
	// TcID identifies the case; unique in the file, starting at 1.
	TcID int `json:"tcId"`
	// Comment says what the case tests.
	Comment string `json:"comment"`
	// Flags group the cases, for example "v1", "Rotation", "Malformed".
	Flags []string `json:"flags"`
	// Keys is the verifier's keyring, in order.
	Keys []VectorKey `json:"keys"`
	// Options are the verifier's options.
	Options VectorOptions `json:"options"`
	// Now is the verifier's clock, in Unix seconds.
	Now int64 `json:"now"`
	// Headers are the request headers; names may be in any case. An absent
	// name means the header is absent.
	Headers map[string]string `json:"headers"`
	// BodyBase64 is the raw request body in standard base64.
	BodyBase64 string `json:"bodyBase64"`
	// Result is "valid" or "invalid".
	Result string `json:"result"`
	// Error is, for an invalid case, the Go name of the sentinel error the
	// verifier must return, for example "ErrNoMatchingSignature"; empty for
	// a valid case.
	Error string `json:"error"`
	// KeyLabel is, for a valid case, the label of the key that must match.
	KeyLabel string `json:"keyLabel"`
}

// VectorKey is one key of a vector's keyring. Exactly one of Secret and
// RawBase64 is set.
type VectorKey struct {
	// Label names the key.
	Label string `json:"label"`
	// Secret is the text form of the secret, usually "whsec_" + base64.
	Secret string `json:"secret,omitempty"`
	// RawBase64 is a raw-bytes secret, in standard base64.
	RawBase64 string `json:"rawBase64,omitempty"`
	// Expires is the Unix second from which the key is inactive; 0 means
	// never.
	Expires int64 `json:"expires"`
}

// VectorOptions are the verifier options of one vector.
type VectorOptions struct {
	// ToleranceSeconds is the timestamp tolerance; 0 means the default of
	// 300 seconds.
	ToleranceSeconds int64 `json:"toleranceSeconds"`
	// AllowBodySignature turns on the legacy body-only signature mode.
	AllowBodySignature bool `json:"allowBodySignature"`
	// AllowSecretDigest turns on the legacy secret-digest mode.
	AllowSecretDigest bool `json:"allowSecretDigest"`
}

// Body returns the decoded request body.
func (v *Vector) Body() ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(v.BodyBase64)
	if err != nil {
		return nil, fmt.Errorf("testvectors: tcId %d: bodyBase64: %w", v.TcID, err)
	}
	return b, nil
}

// RawKey returns the decoded RawBase64 of a raw-bytes key.
func (k *VectorKey) RawKey() ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(k.RawBase64)
	if err != nil {
		return nil, fmt.Errorf("testvectors: key %q: rawBase64: %w", k.Label, err)
	}
	return b, nil
}

// Bytes returns the raw embedded vectors.json. The caller must not modify
// it.
func Bytes() []byte { return raw }

// Load parses the embedded vectors. It rejects unknown fields, a wrong
// scheme or version, a count that disagrees with the list and duplicate
// tcIds, so a damaged file cannot pass silently.
func Load() (*File, error) {
	return Parse(raw)
}

// Parse parses data in the vectors.json format with the checks of Load; the
// document must be the whole of data, but for trailing white space.
func Parse(data []byte) (*File, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("testvectors: %w", err)
	}
	// One document and nothing after it but white space: a second value
	// or a stray byte means a damaged or concatenated file.
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("testvectors: data after the JSON document")
	}
	if f.Scheme != Scheme || f.Version != 1 {
		return nil, fmt.Errorf("testvectors: scheme %q version %d, want %q version 1", f.Scheme, f.Version, Scheme)
	}
	if f.NumberOfTests != len(f.Tests) {
		return nil, fmt.Errorf("testvectors: numberOfTests is %d but the file holds %d tests", f.NumberOfTests, len(f.Tests))
	}
	seen := make(map[int]bool, len(f.Tests))
	for _, v := range f.Tests {
		if seen[v.TcID] {
			return nil, fmt.Errorf("testvectors: duplicate tcId %d", v.TcID)
		}
		seen[v.TcID] = true
	}
	return &f, nil
}
