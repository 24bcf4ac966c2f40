package verify

import "time"

// SetMonotonic makes s read its monotonic clock from f instead of the
// monotonic reading of its Now, so that a test can step the wall clock
// alone, as NTP or a resumed VM does.
func SetMonotonic(s *MemoryStore, f func() time.Duration) { s.monotonic = f }
