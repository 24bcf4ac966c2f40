package verify

import (
	"fmt"
	"sync"
)

// DefaultMaxBodyBytesInFlight is the size of the BodyBudget a Verifier
// makes for itself when Options.BodyBudget is nil: 32 MiB, 32 bodies at
// the default cap (or one body at Options.MaxBodyBytes, if that is more).
const DefaultMaxBodyBytesInFlight = 32 << 20

// busyRetryAfter is the Retry-After, in seconds, of a 503 for a spent body
// budget: the bodies being read finish or time out within seconds.
const busyRetryAfter = "1"

// BodyBudget bounds the memory of the bodies that the middleware of the
// verifiers sharing it are reading at once. A request takes what its
// Content-Length declares (the body cap when it declares none) before its
// body is read, and gives it back once the body is read. A request that
// finds too little left is answered 503 with Retry-After at once, its
// body unread. So clients that declare big bodies and stall them hold at
// most the budget, however many connections they open, while small bodies
// are never limited by their number.
//
// Share one BodyBudget between the verifiers of one listener (one per
// webhook or tenant) to bound them together. It is safe for concurrent
// use.
type BodyBudget struct {
	mu    sync.Mutex
	left  int64
	total int64
}

// NewBodyBudget returns a budget of bytes, which must be at least the
// largest body cap of the verifiers that will share it (each checks at
// NewVerifier).
func NewBodyBudget(bytes int64) (*BodyBudget, error) {
	if bytes <= 0 {
		return nil, withHint(ErrInvalidOptions, "a BodyBudget must be positive")
	}
	return &BodyBudget{left: bytes, total: bytes}, nil
}

// Size returns the budget's size in bytes.
func (b *BodyBudget) Size() int64 { return b.total }

// take reserves n bytes, or reports false when fewer are left. It never
// waits: a spent budget is answered 503 at once rather than by holding
// the connection.
func (b *BodyBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.left {
		return false
	}
	b.left -= n
	return true
}

// give returns n bytes taken before.
func (b *BodyBudget) give(n int64) {
	b.mu.Lock()
	b.left = min(b.left+n, b.total)
	b.mu.Unlock()
}

// String describes the budget for logs.
func (b *BodyBudget) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fmt.Sprintf("BodyBudget(%d of %d bytes free)", b.left, b.total)
}
