package verifytest

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stairhook/stairhook/verify"
)

// Durations of TestStore. longTTL does not run out during a test; shortTTL
// is short enough to wait for, and long enough that a store on the network
// answers within it most of the time (checks that it has not run out yet
// are only made while it has not).
const (
	longTTL   = time.Hour
	shortTTL  = 250 * time.Millisecond
	pollEvery = 10 * time.Millisecond
)

// expiryWait bounds the wait for a key to expire; the tests of TestStore
// shorten it to see a store that never expires fail quickly.
var expiryWait = 20 * time.Second

// TestStore checks that a verify.Store keeps the contract documented on
// the interface, as testing/fstest.TestFS does for a file system: the
// states new, in-flight and done; Release freeing a key; Done and Release
// refusing a reservation that does not hold the key; the expiry of
// reservations and of done keys; exactly one StateNew among concurrent
// Reserve calls; keys compared byte for byte; tokens never reused; the
// largest ttl held rather than wrapped. Call it from a test of your
// store:
//
//	func TestStoreContract(t *testing.T) {
//		verifytest.TestStore(t, func(t *testing.T) verify.Store {
//			return mystore.New(...) // empty, or with a key space of its own
//		})
//	}
//
// It runs one subtest per property, in sequence, and calls newStore once
// in each: the store returned must hold no keys, and is not used after the
// subtest ends, so newStore may register a clean-up with t.
//
// Expiry is checked on the real clock, with ttls of 250 ms: give a store
// with an injected clock time.Now. A check that a key is still held is
// made only while less than its ttl has passed, and expiry is waited for
// up to 20 s, so a slow machine delays the subtests rather than fail them.
// The whole run takes a few seconds.
func TestStore(t *testing.T, newStore func(t *testing.T) verify.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		run  func(*testing.T, verify.Store)
	}{
		{"States", testStoreStates},
		{"ReleaseFreesKey", testStoreRelease},
		{"ForeignReservation", testStoreForeign},
		{"ReservationExpires", testStoreReservationExpires},
		{"DoneExpires", testStoreDoneExpires},
		{"DoneSetsNewTTL", testStoreDoneSetsTTL},
		{"ConcurrentReserve", testStoreConcurrent},
		{"DistinctKeys", testStoreDistinctKeys},
		{"TokensNotReused", testStoreTokens},
		{"LargestTTL", testStoreLargestTTL},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

// TestStoreWallClock checks the part of the verify.Store contract that
// TestStore cannot: that a ttl runs out on the wall clock the Verifier
// checks timestamps by, not on a monotonic clock alone. newStore must
// return an empty store that reads the current time from now, as
// MemoryStoreOptions.Now, SQLStoreOptions.Now and redisstore.Options.Now
// do:
//
//	func TestStoreWallClock(t *testing.T) {
//		verifytest.TestStoreWallClock(t, func(t *testing.T, now func() time.Time) verify.Store {
//			return mystore.New(mystore.Options{Now: now})
//		})
//	}
//
// The clock reads an hour ahead while a key is reserved, or marked done,
// for 250 ms; then it is stepped back to the time of day, as NTP steps a
// clock that ran ahead. The key must still be held once the 250 ms have
// passed in real time: on the given clock, its ttl ends an hour later. A
// store that counted the ttl on a clock of its own would free the key, and
// so let a captured request be replayed while its timestamp is accepted
// again. The times the clock returns carry no monotonic reading. It takes
// about a second.
func TestStoreWallClock(t *testing.T, newStore func(t *testing.T, now func() time.Time) verify.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		run  func(*testing.T, verify.Store, *steppedClock)
	}{
		{"WallClockReservation", testStoreWallClockReservation},
		{"WallClockDone", testStoreWallClockDone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &steppedClock{}
			tc.run(t, newStore(t, clk.now), clk)
		})
	}
}

// steppedClock is the time of day plus an offset that a test steps.
type steppedClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *steppedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset).Round(0)
}

func (c *steppedClock) set(offset time.Duration) {
	c.mu.Lock()
	c.offset = offset
	c.mu.Unlock()
}

// A reservation made while the clock ran an hour ahead is held after the
// clock was stepped back and its ttl passed in real time.
func testStoreWallClockReservation(t *testing.T, s verify.Store, clk *steppedClock) {
	clk.set(time.Hour)
	reserveNew(t, s, "evt_1", shortTTL)
	clk.set(0)
	time.Sleep(shortTTL + 2*pollEvery)
	wantState(t, s, "evt_1", verify.StateInFlight)
}

// The same for a key marked done.
func testStoreWallClockDone(t *testing.T, s verify.Store, clk *steppedClock) {
	clk.set(time.Hour)
	r := reserveNew(t, s, "evt_1", longTTL)
	if err := s.Done(t.Context(), r, shortTTL); err != nil {
		t.Fatalf("Done: %v", err)
	}
	clk.set(0)
	time.Sleep(shortTTL + 2*pollEvery)
	wantState(t, s, "evt_1", verify.StateDone)
}

// New → in flight → done, and done is final.
func testStoreStates(t *testing.T, s verify.Store) {
	ctx := t.Context()
	r := reserveNew(t, s, "evt_1", longTTL)
	wantState(t, s, "evt_1", verify.StateInFlight)
	wantState(t, s, "evt_1", verify.StateInFlight) // asking does not change it

	if err := s.Done(ctx, r, longTTL); err != nil {
		t.Fatalf("Done: %v", err)
	}
	wantState(t, s, "evt_1", verify.StateDone)

	if err := s.Release(ctx, r); err != nil {
		t.Fatalf("Release after Done: %v", err)
	}
	wantState(t, s, "evt_1", verify.StateDone) // Release after Done does nothing
	if err := s.Done(ctx, r, longTTL); !errors.Is(err, verify.ErrReservationLost) {
		t.Errorf("Done a second time = %v, want ErrReservationLost", err)
	}
	wantState(t, s, "evt_1", verify.StateDone)
}

// Release by the holder frees the key; the old reservation is dead.
func testStoreRelease(t *testing.T, s verify.Store) {
	ctx := t.Context()
	r1 := reserveNew(t, s, "evt_1", longTTL)
	if err := s.Release(ctx, r1); err != nil {
		t.Fatalf("Release: %v", err)
	}
	r2 := reserveNew(t, s, "evt_1", longTTL)
	if r2.Token == r1.Token {
		t.Errorf("the reservation after Release has the released one's token %q", r1.Token)
	}

	if err := s.Done(ctx, r1, longTTL); !errors.Is(err, verify.ErrReservationLost) {
		t.Errorf("Done with the released reservation = %v, want ErrReservationLost", err)
	}
	if err := s.Release(ctx, r1); err != nil {
		t.Fatalf("Release of the released reservation: %v", err)
	}
	wantState(t, s, "evt_1", verify.StateInFlight) // the new holder keeps it
	if err := s.Done(ctx, r2, longTTL); err != nil {
		t.Fatalf("Done by the new holder: %v", err)
	}
	wantState(t, s, "evt_1", verify.StateDone)
}

// Done and Release with a reservation that does not hold the key: Done
// fails with ErrReservationLost, Release does nothing, and the holder is
// untouched.
func testStoreForeign(t *testing.T, s verify.Store) {
	ctx := t.Context()
	r := reserveNew(t, s, "evt_1", longTTL)
	other := reserveNew(t, s, "evt_2", longTTL)

	forged := []verify.Reservation{
		{Key: r.Key},                         // no token
		{Key: r.Key, Token: "x"},             // a wrong one
		{Key: r.Key, Token: r.Token + "x"},   // the token and more
		{Key: r.Key, Token: r.Token[1:]},     // part of it
		{Key: r.Key, Token: other.Token},     // the token of another key
		{Key: other.Key, Token: r.Token},     // this token on another key
		{Key: r.Key + "x", Token: r.Token},   // on a longer key
		{Key: "evt_unknown", Token: r.Token}, // on a key nobody holds
	}
	if up := strings.ToUpper(r.Token); up != r.Token {
		forged = append(forged, verify.Reservation{Key: r.Key, Token: up}) // tokens are case-sensitive
	}
	for _, f := range forged {
		if err := s.Done(ctx, f, longTTL); !errors.Is(err, verify.ErrReservationLost) {
			t.Errorf("Done(%q, token %q) = %v, want ErrReservationLost", f.Key, f.Token, err)
		}
		if err := s.Release(ctx, f); err != nil {
			t.Errorf("Release(%q, token %q): %v", f.Key, f.Token, err)
		}
		wantState(t, s, r.Key, verify.StateInFlight)
		wantState(t, s, other.Key, verify.StateInFlight)
	}
	// Neither Done nor Release took the unknown key.
	reserveNew(t, s, "evt_unknown", longTTL)

	if err := s.Done(ctx, r, longTTL); err != nil {
		t.Fatalf("Done by the holder after the forgeries: %v", err)
	}
	if err := s.Release(ctx, other); err != nil {
		t.Fatalf("Release by the holder after the forgeries: %v", err)
	}
	wantState(t, s, r.Key, verify.StateDone)
	reserveNew(t, s, other.Key, longTTL)
}

// A reservation is held for its ttl, then the key is free, and the expired
// reservation can neither finish nor release the new holder's.
func testStoreReservationExpires(t *testing.T, s verify.Store) {
	ctx := t.Context()
	start := time.Now()
	r := reserveNew(t, s, "evt_1", shortTTL)
	wantStateWithin(t, s, "evt_1", verify.StateInFlight, start, shortTTL)

	r2 := waitFree(t, s, "evt_1")
	if err := s.Done(ctx, r, longTTL); !errors.Is(err, verify.ErrReservationLost) {
		t.Errorf("Done with the expired reservation = %v, want ErrReservationLost", err)
	}
	if err := s.Release(ctx, r); err != nil {
		t.Fatalf("Release of the expired reservation: %v", err)
	}
	wantState(t, s, "evt_1", verify.StateInFlight)
	if err := s.Done(ctx, r2, longTTL); err != nil {
		t.Fatalf("Done by the new holder: %v", err)
	}
	wantState(t, s, "evt_1", verify.StateDone)
}

// A done key is kept for the ttl given to Done, then it is free.
func testStoreDoneExpires(t *testing.T, s verify.Store) {
	r := reserveNew(t, s, "evt_1", longTTL)
	start := time.Now()
	if err := s.Done(t.Context(), r, shortTTL); err != nil {
		t.Fatalf("Done: %v", err)
	}
	wantStateWithin(t, s, "evt_1", verify.StateDone, start, shortTTL)
	waitFree(t, s, "evt_1")
}

// Done replaces the reservation's ttl: a done key outlives the reservation
// it came from.
func testStoreDoneSetsTTL(t *testing.T, s verify.Store) {
	start := time.Now()
	r := reserveNew(t, s, "evt_1", shortTTL)
	err := s.Done(t.Context(), r, longTTL)
	if err != nil {
		if errors.Is(err, verify.ErrReservationLost) && time.Since(start) >= shortTTL {
			t.Skipf("the reservation ran out before Done (%v of its %v passed): the machine is too slow for this check", time.Since(start), shortTTL)
		}
		t.Fatalf("Done: %v", err)
	}
	time.Sleep(shortTTL + 100*time.Millisecond)
	wantState(t, s, "evt_1", verify.StateDone)
}

// Of concurrent Reserve calls for one key, exactly one gets StateNew; after
// Done they all see StateDone, after Release exactly one gets it again.
func testStoreConcurrent(t *testing.T, s verify.Store) {
	const n = 32
	ctx := t.Context()
	// race reserves key from n goroutines at once and returns the
	// reservations that got StateNew and the count of each state.
	race := func(key string) ([]verify.Reservation, map[verify.State]int) {
		var (
			mu     sync.Mutex
			wg     sync.WaitGroup
			won    []verify.Reservation
			states = map[verify.State]int{}
			start  = make(chan struct{})
		)
		for range n {
			wg.Go(func() {
				<-start
				r, st, err := s.Reserve(ctx, key, longTTL)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("Reserve(%q): %v", key, err)
					return
				}
				states[st]++
				if st == verify.StateNew {
					won = append(won, r)
				}
			})
		}
		close(start)
		wg.Wait()
		return won, states
	}
	for round := range 5 {
		key := "evt_" + strconv.Itoa(round)
		won, states := race(key)
		if len(won) != 1 || states[verify.StateInFlight] != n-1 {
			t.Fatalf("round %d: %d concurrent Reserve calls got %v, want 1 %v and %d %v",
				round, n, states, verify.StateNew, n-1, verify.StateInFlight)
		}
		if round%2 == 0 {
			if err := s.Release(ctx, won[0]); err != nil {
				t.Fatalf("Release: %v", err)
			}
			if won, states = race(key); len(won) != 1 || states[verify.StateInFlight] != n-1 {
				t.Fatalf("round %d after Release: got %v, want 1 %v and %d %v",
					round, states, verify.StateNew, n-1, verify.StateInFlight)
			}
		}
		if err := s.Done(ctx, won[0], longTTL); err != nil {
			t.Fatalf("Done: %v", err)
		}
		if _, states = race(key); states[verify.StateDone] != n {
			t.Fatalf("round %d after Done: got %v, want %d %v", round, states, n, verify.StateDone)
		}
	}
}

// Keys are arbitrary strings compared byte for byte: keys that differ in
// case, spacing, a NUL byte or invalid UTF-8 are independent, and what
// happens to one does not happen to another.
func testStoreDistinctKeys(t *testing.T, s verify.Store) {
	ctx := t.Context()
	keys := []string{
		"evt_1", "EVT_1", "evt_1 ", " evt_1", "evt_10", "evt_", "evt_1\x00", "evt\x001",
		"\xff\xfe", "é", "e\u0301", // é precomposed and decomposed
		strings.Repeat("k", 512),
	}
	rs := make([]verify.Reservation, len(keys))
	for i, k := range keys {
		rs[i] = reserveNew(t, s, k, longTTL)
	}
	if err := s.Done(ctx, rs[0], longTTL); err != nil {
		t.Fatalf("Done(%q): %v", keys[0], err)
	}
	if err := s.Release(ctx, rs[1]); err != nil {
		t.Fatalf("Release(%q): %v", keys[1], err)
	}
	wantState(t, s, keys[0], verify.StateDone)
	reserveNew(t, s, keys[1], longTTL)
	for _, k := range keys[2:] {
		wantState(t, s, k, verify.StateInFlight)
	}
}

// Every reservation has a token of its own, for distinct keys and for one
// key reserved again and again.
func testStoreTokens(t *testing.T, s verify.Store) {
	ctx := t.Context()
	seen := map[string]string{}
	check := func(r verify.Reservation) {
		t.Helper()
		if prev, ok := seen[r.Token]; ok {
			t.Fatalf("token %q of %q was given before, to %q", r.Token, r.Key, prev)
		}
		seen[r.Token] = r.Key
	}
	for i := range 25 {
		check(reserveNew(t, s, "evt_"+strconv.Itoa(i), longTTL))
		r := reserveNew(t, s, "evt_again", longTTL)
		check(r)
		if err := s.Release(ctx, r); err != nil {
			t.Fatalf("Release: %v", err)
		}
	}
}

// The Middleware saturates a retention at the largest Duration: a store
// must hold such a key, not let the sum with the current time wrap into
// the past.
func testStoreLargestTTL(t *testing.T, s verify.Store) {
	r := reserveNew(t, s, "evt_1", math.MaxInt64)
	wantState(t, s, "evt_1", verify.StateInFlight)
	if err := s.Done(t.Context(), r, math.MaxInt64); err != nil {
		t.Fatalf("Done: %v", err)
	}
	wantState(t, s, "evt_1", verify.StateDone)
}

// reserveNew reserves key and fails the test unless it was free.
func reserveNew(t *testing.T, s verify.Store, key string, ttl time.Duration) verify.Reservation {
	t.Helper()
	r, st, err := s.Reserve(t.Context(), key, ttl)
	if err != nil {
		t.Fatalf("Reserve(%q): %v", key, err)
	}
	if st != verify.StateNew {
		t.Fatalf("Reserve(%q) = %v, want %v", key, st, verify.StateNew)
	}
	if r.Key != key || r.Token == "" {
		t.Fatalf("Reserve(%q) returned reservation of key %q, token %q; want its key and a token", key, r.Key, r.Token)
	}
	return r
}

// wantState fails the test unless Reserve of the taken key answers want.
// Should the key be free, the test fails anyway, so the reservation that
// this takes does not matter.
func wantState(t *testing.T, s verify.Store, key string, want verify.State) {
	t.Helper()
	if st := state(t, s, key); st != want {
		t.Fatalf("Reserve(%q) = %v, want %v", key, st, want)
	}
}

// wantStateWithin is wantState for a key held for ttl since start, that
// may have run out on a slow machine: only an answer given before then
// must be want.
func wantStateWithin(t *testing.T, s verify.Store, key string, want verify.State, start time.Time, ttl time.Duration) {
	t.Helper()
	st := state(t, s, key)
	if elapsed := time.Since(start); elapsed >= ttl {
		t.Logf("not checking that %q is %v: %v of its ttl of %v passed before the answer", key, want, elapsed, ttl)
		return
	}
	if st != want {
		t.Fatalf("Reserve(%q) = %v within its ttl, want %v", key, st, want)
	}
}

func state(t *testing.T, s verify.Store, key string) verify.State {
	t.Helper()
	// A short ttl, in case the key is free: the check holds it only
	// briefly.
	_, st, err := s.Reserve(t.Context(), key, shortTTL)
	if err != nil {
		t.Fatalf("Reserve(%q): %v", key, err)
	}
	return st
}

// waitFree reserves key once its holder's ttl has run out, polling, and
// fails the test if that takes longer than expiryWait.
func waitFree(t *testing.T, s verify.Store, key string) verify.Reservation {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), expiryWait)
	defer cancel()
	for {
		r, st, err := s.Reserve(ctx, key, longTTL)
		if err == nil && st == verify.StateNew {
			return r
		}
		if err != nil && ctx.Err() == nil {
			t.Fatalf("Reserve(%q): %v", key, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%q was not free %v after its ttl began (last answer %v, %v)", key, expiryWait, st, err)
		case <-time.After(pollEvery):
		}
	}
}
