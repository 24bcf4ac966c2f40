package verify

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"strings"
)

// SecretPrefix starts the text form of every secret made by [NewSecret].
const SecretPrefix = "whsec_"

const (
	minSecretBytes = 16
	newSecretBytes = 32
	// maxSecretText bounds the work ParseSecret does on hostile input.
	maxSecretText = 1024
)

// Secret is a webhook signing secret: the HMAC key that sender and receiver
// share. The zero Secret is invalid. A Secret never prints its key: String,
// GoString and LogValue are redacted, so it is safe in %v, %#v and slog.
type Secret struct {
	key []byte
	// raw marks a secret made by RawSecret: its legacy digest is over the raw
	// bytes rather than over the whsec_ text.
	raw bool
}

// NewSecret returns a fresh secret of 32 random bytes from crypto/rand, to be
// shown once to the admin with [Secret.Encode].
func NewSecret() (Secret, error) {
	key := make([]byte, newSecretBytes)
	if _, err := rand.Read(key); err != nil {
		return Secret{}, err
	}
	return Secret{key: key}, nil
}

// ParseSecret parses the text form of a secret: "whsec_" followed by
// canonical, padded standard base64 of at least 16 bytes. Surrounding white
// space is trimmed and the prefix is optional. Anything else is
// [ErrInvalidSecret]; a secret is never silently shortened or weakened.
func ParseSecret(s string) (Secret, error) {
	if len(s) > maxSecretText {
		return Secret{}, withHint(ErrInvalidSecret, "longer than 1024 characters")
	}
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, SecretPrefix)
	if s == "" {
		return Secret{}, withHint(ErrInvalidSecret, "empty")
	}
	// encoding/base64 skips CR and LF even in Strict mode; a secret with a
	// line break inside is not canonical, so only the alphabet and padding
	// get through.
	for i := 0; i < len(s); i++ {
		if b64Index[s[i]] == 0xff && s[i] != '=' {
			return Secret{}, withHint(ErrInvalidSecret, "not canonical padded standard base64 after the whsec_ prefix")
		}
	}
	key, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return Secret{}, withHint(ErrInvalidSecret, "not canonical padded standard base64 after the whsec_ prefix")
	}
	if len(key) < minSecretBytes {
		return Secret{}, withHint(ErrInvalidSecret, "fewer than 16 bytes once decoded")
	}
	return Secret{key: key}, nil
}

// RawSecret uses b, at least 16 bytes, as the HMAC key as it is. It serves
// senders whose secret is not in the whsec_ format. b is copied.
func RawSecret(b []byte) (Secret, error) {
	if len(b) < minSecretBytes {
		return Secret{}, withHint(ErrInvalidSecret, "fewer than 16 bytes")
	}
	return Secret{key: append([]byte(nil), b...), raw: true}, nil
}

// Encode returns the full text form of the secret, "whsec_" + base64, which
// ParseSecret accepts. Show it once to the admin; never log it.
func (s Secret) Encode() string {
	if len(s.key) == 0 {
		return ""
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(s.key)
}

// String returns a redacted form, safe for %v and logs.
func (s Secret) String() string {
	if len(s.key) == 0 {
		return "verify.Secret(empty)"
	}
	return "verify.Secret(redacted)"
}

// GoString returns the same redacted form as String, so %#v is safe too.
func (s Secret) GoString() string { return s.String() }

// LogValue implements [slog.LogValuer] with the redacted form.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// valid reports whether s can be used as a key.
func (s Secret) valid() bool { return len(s.key) >= minSecretBytes }

// Digest returns the SHA-256 of the secret's text as the admin copied it: the
// whsec_ form for parsed and generated secrets, the bytes of a RawSecret. Only
// the weak legacy AllowSecretDigest mode uses it. It is secret-derived: treat
// it like the secret.
func (s Secret) Digest() [sha256.Size]byte {
	if s.raw {
		return sha256.Sum256(s.key)
	}
	return sha256.Sum256([]byte(s.Encode()))
}
