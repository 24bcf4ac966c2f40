//go:build race

package event

// raceEnabled reports whether the tests run under the race detector, which
// makes decoding a megabyte about ten times slower.
const raceEnabled = true
