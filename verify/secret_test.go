package verify_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stairhook/stairhook/verify"
)

// b32 is 32 fixed bytes and s32 their whsec_ text.
var (
	b32 = []byte("0123456789abcdef0123456789ABCDEF")
	s32 = "whsec_" + base64.StdEncoding.EncodeToString(b32)
)

func TestParseSecret(t *testing.T) {
	b16 := base64.StdEncoding.EncodeToString(b32[:16])
	b15 := base64.StdEncoding.EncodeToString(b32[:15])
	plain := strings.TrimPrefix(s32, "whsec_")
	for _, c := range []struct {
		name string
		in   string
		want []byte // nil: ErrInvalidSecret
	}{
		// Accepted forms.
		{"whsec_ text", s32, b32},
		{"prefix optional", plain, b32},
		{"surrounding white space trimmed", " \t\r\n" + s32 + "\n ", b32},
		{"16 bytes, the minimum", "whsec_" + b16, b32[:16]},
		{"Standard Webhooks example secret (24 bytes)", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", mustStd("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")},
		// Rejected: never a weaker or empty key.
		{"empty", "", nil},
		{"white space only", "  \n", nil},
		{"prefix only", "whsec_", nil},
		{"15 bytes", "whsec_" + b15, nil},
		{"non-canonical base64: padding bits set", "whsec_" + b16[:len(b16)-3] + "R==", nil},
		{"missing padding", "whsec_" + strings.TrimRight(b16, "="), nil},
		{"URL-safe alphabet", "whsec_" + base64.URLEncoding.EncodeToString([]byte("\xfb\xff\xfe0123456789abcdefghijklmnopq")), nil},
		{"line break inside", "whsec_" + plain[:20] + "\n" + plain[20:], nil},
		{"CR inside", "whsec_" + plain[:20] + "\r" + plain[20:], nil},
		{"space inside", "whsec_" + plain[:20] + " " + plain[20:], nil},
		{"prefix twice", "whsec_" + s32, nil},
		{"upper-case prefix", "WHSEC_" + plain, nil},
		{"over 1024 characters", "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 800)), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := verify.ParseSecret(c.in)
			if c.want == nil {
				if !errors.Is(err, verify.ErrInvalidSecret) {
					t.Fatalf("ParseSecret(%q) error = %v, want ErrInvalidSecret", c.in, err)
				}
				if s.Encode() != "" {
					t.Fatalf("ParseSecret(%q) failed but returned a usable secret", c.in)
				}
				if len(c.in) > 10 && strings.Contains(err.Error(), c.in[6:]) {
					t.Fatalf("error %q echoes the input", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSecret(%q): %v", c.in, err)
			}
			want := "whsec_" + base64.StdEncoding.EncodeToString(c.want)
			if got := s.Encode(); got != want {
				t.Fatalf("Encode() = %q, want %q", got, want)
			}
		})
	}
}

func mustStd(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 32; i++ {
		s, err := verify.NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		text := s.Encode()
		if !strings.HasPrefix(text, "whsec_") {
			t.Fatalf("Encode() = %q, want the whsec_ prefix", text)
		}
		key, err := base64.StdEncoding.Strict().DecodeString(strings.TrimPrefix(text, "whsec_"))
		if err != nil || len(key) != 32 {
			t.Fatalf("NewSecret key is %d bytes (%v), want 32", len(key), err)
		}
		if seen[text] {
			t.Fatal("NewSecret repeated a secret")
		}
		seen[text] = true
		back, err := verify.ParseSecret(text)
		if err != nil {
			t.Fatalf("ParseSecret(Encode()) = %v", err)
		}
		if back.Encode() != text {
			t.Fatal("Encode/ParseSecret round trip changed the secret")
		}
	}
}

func TestRawSecret(t *testing.T) {
	if _, err := verify.RawSecret(make([]byte, 15)); !errors.Is(err, verify.ErrInvalidSecret) {
		t.Fatalf("RawSecret(15 bytes) = %v, want ErrInvalidSecret", err)
	}
	if _, err := verify.RawSecret(nil); !errors.Is(err, verify.ErrInvalidSecret) {
		t.Fatalf("RawSecret(nil) = %v, want ErrInvalidSecret", err)
	}
	in := []byte("vendor-shared-secret-7f3a9c")
	s, err := verify.RawSecret(in)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := verify.NewSigner(s)
	if err != nil {
		t.Fatal(err)
	}
	h1, err := signer.Sign("evt_1", fixedNow, []byte("body"))
	if err != nil {
		t.Fatal(err)
	}
	// Changing the caller's slice must not change the key.
	for i := range in {
		in[i] = 0
	}
	h2, err := signer.Sign("evt_1", fixedNow, []byte("body"))
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := verify.RawSecret([]byte("vendor-shared-secret-7f3a9c"))
	v := newTestVerifier(t, verify.Options{Keys: []verify.Key{{Label: "raw", Secret: s}}})
	for _, h := range []map[string][]string{h1, h2} {
		if _, err := v.Verify(h, []byte("body")); err != nil {
			t.Fatalf("raw secret changed after its input slice was modified: %v", err)
		}
	}
	// A signer made after the mutation with the original bytes agrees.
	other, _ := verify.NewSigner(s2)
	h3, _ := other.Sign("evt_1", fixedNow, []byte("body"))
	if _, err := v.Verify(h3, []byte("body")); err != nil {
		t.Fatal(err)
	}
}

func TestSecretNeverPrintsTheKey(t *testing.T) {
	s, err := verify.ParseSecret(s32)
	if err != nil {
		t.Fatal(err)
	}
	key := Key{Label: "k", Secret: s}
	var logged bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logged, nil))
	logger.Info("secret", "secret", s, "key", key)
	jsonLogged := &bytes.Buffer{}
	slog.New(slog.NewJSONHandler(jsonLogged, nil)).Info("secret", "secret", s)
	outputs := map[string]string{
		"String":    s.String(),
		"GoString":  s.GoString(),
		"%v":        fmt.Sprintf("%v", s),
		"%+v":       fmt.Sprintf("%+v", s),
		"%#v":       fmt.Sprintf("%#v", s),
		"Sprint":    fmt.Sprint(s),
		"%q":        fmt.Sprintf("%q", s),
		"%v key":    fmt.Sprintf("%v", verify.Key{Label: "k", Secret: s}),
		"%+v key":   fmt.Sprintf("%+v", verify.Key{Label: "k", Secret: s}),
		"%#v key":   fmt.Sprintf("%#v", verify.Key{Label: "k", Secret: s}),
		"slog text": logged.String(),
		"slog json": jsonLogged.String(),
	}
	for name, out := range outputs {
		if leaks(out) {
			t.Errorf("%s leaks the key: %s", name, out)
		}
		if !strings.Contains(out, "redacted") {
			t.Errorf("%s = %q, want the redacted form", name, out)
		}
	}
	// The verifier and the signer hold key material (and, for the legacy
	// digest mode, a digest that is itself a valid signature): printing
	// them must show neither.
	v, err := verify.NewVerifier(verify.Options{Keys: []verify.Key{{Label: "k", Secret: s}}, AllowSecretDigest: true})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := verify.NewSigner(s)
	if err != nil {
		t.Fatal(err)
	}
	d := s.Digest()
	for _, out := range []string{
		fmt.Sprintf("%v", v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v), fmt.Sprint(*v), fmt.Sprintf("%+v", *v), fmt.Sprintf("%#v", *v),
		fmt.Sprintf("%v", signer), fmt.Sprintf("%+v", signer), fmt.Sprintf("%#v", signer),
	} {
		if leaks(out) || strings.Contains(out, fmt.Sprintf("%x", d)) || strings.Contains(out, strings.Trim(fmt.Sprintf("%v", d[:8]), "[]")) {
			t.Errorf("a printed verifier or signer shows key material: %s", out)
		}
	}
	var zero verify.Secret
	if got := zero.String(); got != "verify.Secret(empty)" || zero.Encode() != "" {
		t.Errorf("zero Secret: String %q, Encode %q", got, zero.Encode())
	}
}

// Key mirrors verify.Key for a %v of a struct that embeds a secret.
type Key struct {
	Label  string
	Secret verify.Secret
}

// leaks reports whether out contains the test key in any common form.
func leaks(out string) bool {
	forms := []string{
		s32,
		strings.TrimPrefix(s32, "whsec_"),
		string(b32),
		fmt.Sprintf("%x", b32),
		fmt.Sprintf("%v", b32),
		base64.RawStdEncoding.EncodeToString(b32),
	}
	for _, f := range forms {
		if strings.Contains(out, f) {
			return true
		}
	}
	return false
}
