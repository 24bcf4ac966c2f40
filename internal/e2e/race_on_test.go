//go:build race

package e2e

// raceEnabled reports whether the tests run under the race detector, which
// slows the server several times: the load tests send fewer events then.
const raceEnabled = true
