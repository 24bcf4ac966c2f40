package verifytest

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stairhook/stairhook/verify"
)

// flaws of flawedStore, each a way to break the Store contract, with the
// subtest of TestStore that must catch it.
var flaws = []struct {
	name, caughtBy string
	flaw           flaw
}{
	{"check then set", "ConcurrentReserve", flaw{checkThenSet: true}},
	{"Done trusts the key", "ForeignReservation", flaw{doneIgnoresToken: true}},
	{"Release trusts the key", "ForeignReservation", flaw{releaseIgnoresToken: true}},
	{"Release after Done frees", "States", flaw{releaseFreesDone: true}},
	{"keys folded to lower case", "DistinctKeys", flaw{foldCase: true}},
	{"tokens repeat", "TokensNotReused", flaw{tokensRepeat: true}},
	{"never expires", "ReservationExpires", flaw{neverExpires: true}},
	{"Done keeps the reservation's ttl", "DoneSetsNewTTL", flaw{doneKeepsTTL: true}},
	{"ttl wraps around", "LargestTTL", flaw{ttlWraps: true}},
	{"reservation on its own clock", "WallClockReservation", flaw{ownClock: true}},
	{"done on its own clock", "WallClockDone", flaw{ownClock: true}},
}

// TestStoreCatchesFlaws runs TestStore on each flawed store in a child
// process (a failing *testing.T cannot be had otherwise) and checks that the
// subtest meant to catch the flaw fails.
func TestStoreCatchesFlaws(t *testing.T) {
	if testing.Short() {
		t.Skip("runs TestStore in child processes")
	}
	for i, f := range flaws {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestFlawedStore$", "-test.v")
			cmd.Env = append(os.Environ(), "VERIFYTEST_FLAW="+strconv.Itoa(i))
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("TestStore passed a store whose %s:\n%s", f.name, out)
			}
			if want := "--- FAIL: TestFlawedStore/" + f.caughtBy + " "; !strings.Contains(string(out), want) {
				t.Fatalf("TestStore did not fail %s for a store whose %s:\n%s", f.caughtBy, f.name, out)
			}
		})
	}
}

// TestFlawedStore is the child of TestStoreCatchesFlaws.
func TestFlawedStore(t *testing.T) {
	env := os.Getenv("VERIFYTEST_FLAW")
	if env == "" {
		t.Skip("run by TestStoreCatchesFlaws")
	}
	i, err := strconv.Atoi(env)
	if err != nil || i < 0 || i >= len(flaws) {
		t.Fatalf("VERIFYTEST_FLAW=%q", env)
	}
	expiryWait = 2 * time.Second
	TestStore(t, func(*testing.T) verify.Store { return &flawedStore{flaw: flaws[i].flaw} })
	TestStoreWallClock(t, func(_ *testing.T, now func() time.Time) verify.Store {
		return &flawedStore{flaw: flaws[i].flaw, now: now}
	})
}

// TestStoreOnFlawlessStore checks that flawedStore without flaws keeps the
// contract, so that each flaw alone makes it fail.
func TestStoreOnFlawlessStore(t *testing.T) {
	TestStore(t, func(*testing.T) verify.Store { return &flawedStore{} })
	TestStoreWallClock(t, func(_ *testing.T, now func() time.Time) verify.Store { return &flawedStore{now: now} })
}

// flaw is a set of ways for flawedStore to break the contract.
type flaw struct {
	checkThenSet        bool // Reserve reads, then writes in a second step
	doneIgnoresToken    bool
	releaseIgnoresToken bool
	releaseFreesDone    bool
	foldCase            bool
	tokensRepeat        bool
	neverExpires        bool
	doneKeepsTTL        bool
	ttlWraps            bool // expiry computed in nanoseconds that overflow
	ownClock            bool // time.Now rather than the clock it is given
}

// flawedStore is a plain map-based Store, correct unless a flaw is set.
type flawedStore struct {
	flaw

	now    func() time.Time // nil: time.Now
	mu     sync.Mutex
	keys   map[string]flawedEntry
	tokens int
}

func (s *flawedStore) clock() time.Time {
	if s.now == nil || s.ownClock {
		return time.Now()
	}
	return s.now()
}

type flawedEntry struct {
	token   string
	done    bool
	expires int64 // unix nanoseconds
}

func (s *flawedStore) key(k string) string {
	if s.foldCase {
		return strings.ToLower(k)
	}
	return k
}

func (s *flawedStore) expiry(ttl time.Duration) int64 {
	if s.neverExpires {
		ttl = 100 * 365 * 24 * time.Hour
	}
	now := s.clock().UnixNano()
	if !s.ttlWraps && int64(ttl) > (1<<63-1)-now {
		return 1<<63 - 1
	}
	return now + int64(ttl)
}

// live returns the entry of k unless it has expired; s.mu is held.
func (s *flawedStore) live(k string) (flawedEntry, bool) {
	e, ok := s.keys[k]
	return e, ok && s.clock().UnixNano() < e.expires
}

func (s *flawedStore) Reserve(_ context.Context, key string, ttl time.Duration) (verify.Reservation, verify.State, error) {
	k := s.key(key)
	s.mu.Lock()
	if s.keys == nil {
		s.keys = map[string]flawedEntry{}
	}
	if e, ok := s.live(k); ok {
		s.mu.Unlock()
		if e.done {
			return verify.Reservation{}, verify.StateDone, nil
		}
		return verify.Reservation{}, verify.StateInFlight, nil
	}
	if s.checkThenSet {
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	s.tokens++
	token := strconv.Itoa(s.tokens)
	if s.tokensRepeat {
		token = strconv.Itoa(s.tokens % 10)
	}
	s.keys[k] = flawedEntry{token: token, expires: s.expiry(ttl)}
	return verify.Reservation{Key: key, Token: token}, verify.StateNew, nil
}

func (s *flawedStore) Done(_ context.Context, r verify.Reservation, ttl time.Duration) error {
	k := s.key(r.Key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(k)
	if !ok || e.done || (e.token != r.Token && !s.doneIgnoresToken) {
		return verify.ErrReservationLost
	}
	e.done = true
	if !s.doneKeepsTTL {
		e.expires = s.expiry(ttl)
	}
	s.keys[k] = e
	return nil
}

func (s *flawedStore) Release(_ context.Context, r verify.Reservation) error {
	k := s.key(r.Key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(k)
	if ok && (e.token == r.Token || s.releaseIgnoresToken) && (!e.done || s.releaseFreesDone) {
		delete(s.keys, k)
	}
	return nil
}
