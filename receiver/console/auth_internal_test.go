package console

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The table of failed logins holds maxThrottled addresses (and the one
// shared count): one past it, a new address shares the count of every
// other new one until old entries can be forgotten.
func TestFailedLoginTableBound(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a := newAuth("token-token-token", make([]byte, 32), func() time.Time { return now })
	for i := range maxThrottled {
		a.fail(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	require.Len(t, a.failed, maxThrottled)
	assert.Zero(t, a.wait("192.0.2.1"), "a new address has failed nothing yet")

	a.fail("192.0.2.1") // one past
	assert.Len(t, a.failed, maxThrottled+1, "the shared count, and no more")
	assert.NotContains(t, a.failed, "192.0.2.1")
	assert.Positive(t, a.wait("192.0.2.2"), "fail closed: every new address shares the count")
	assert.Positive(t, a.wait("10.0.0.1"), "an address with its own count keeps it")

	now = now.Add(forgetAfter + time.Second)
	assert.Zero(t, a.wait("192.0.2.2"))
	a.fail("192.0.2.3")
	assert.Contains(t, a.failed, "192.0.2.3", "old counts forgotten, a new address has its own again")
	assert.LessOrEqual(t, len(a.failed), maxThrottled+1)
}

// Logged-out sessions are remembered up to maxRevoked; one past it, a new
// key ends every session.
func TestRevokedSessionsBound(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a := newAuth("token-token-token", make([]byte, 32), func() time.Time { return now })
	value, _ := a.newSession()
	for i := range maxRevoked {
		a.revoke(fmt.Sprint(i))
	}
	_, ok := a.session(value)
	assert.True(t, ok, "another session is still valid")
	a.revoke("one-past")
	_, ok = a.session(value)
	assert.False(t, ok, "every session ended")
	assert.LessOrEqual(t, len(a.revoked), maxRevoked)
}
