package forward

import "time"

// SetNow replaces the clock that timestamps each attempt of s.
func SetNow(s *Sink, now func() time.Time) { s.now = now }

// The package's bounds, for the tests one past each.
const (
	MaxResponseBytes    = maxResponseBytes
	MaxSnippetBytes     = maxSnippetBytes
	MaxExtraHeaders     = maxExtraHeaders
	MaxExtraHeaderBytes = maxExtraHeaderBytes
)
