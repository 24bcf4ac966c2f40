package verify

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"
)

// State is what a Store knows of an id when it is reserved.
type State int

const (
	// StateNew means the id was unknown and is now reserved by the caller.
	StateNew State = iota
	// StateInFlight means another request holds the id and has not finished.
	StateInFlight
	// StateDone means the id was processed successfully before.
	StateDone
)

func (s State) String() string {
	switch s {
	case StateNew:
		return "new"
	case StateInFlight:
		return "in-flight"
	case StateDone:
		return "done"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Reservation is the caller's hold on an id, returned by Store.Reserve with
// StateNew. Its Token lets a store refuse Done or Release from anyone but
// the holder.
type Reservation struct {
	Key   string
	Token string
}

// Store records ids for replay protection and idempotency. The Middleware
// reserves the signed id before calling the next handler, marks it done
// after a 2xx answer and releases it otherwise, so the sender's retry is
// processed again. Implementations must be safe for concurrent use and
// atomic: of concurrent Reserve calls for one key, exactly one gets StateNew.
type Store interface {
	// Reserve claims key for ttl. It returns StateNew and a Reservation when
	// the key was free; StateInFlight or StateDone (and a zero Reservation)
	// when it was not.
	Reserve(ctx context.Context, key string, ttl time.Duration) (Reservation, State, error)
	// Done marks a reserved key as processed and keeps it for ttl. It fails
	// with ErrReservationLost when r no longer holds the key.
	Done(ctx context.Context, r Reservation, ttl time.Duration) error
	// Release forgets a reservation, so the key can be reserved again. It
	// does nothing when r no longer holds the key.
	Release(ctx context.Context, r Reservation) error
}

// Store errors.
var (
	// ErrStoreFull means a bounded store has no room for a new key until
	// entries expire; the Middleware answers 503 (fail closed).
	ErrStoreFull = errors.New("verify: store full")
	// ErrReservationLost means a reservation expired or was taken over before
	// Done.
	ErrReservationLost = errors.New("verify: reservation lost")
	// ErrStoreUnavailable wraps store failures reported by the Middleware,
	// answered 503 so the sender retries.
	ErrStoreUnavailable = errors.New("verify: store unavailable")
)

// DefaultMemoryStoreEntries is the capacity of a MemoryStore when
// MemoryStoreOptions.MaxEntries is zero.
const DefaultMemoryStoreEntries = 100_000

// MemoryStoreOptions configures NewMemoryStore.
type MemoryStoreOptions struct {
	// MaxEntries bounds the number of keys held. When full, expired keys are
	// swept; if none can go, Reserve fails with ErrStoreFull rather than
	// forget an id early. Default value is DefaultMemoryStoreEntries.
	MaxEntries int
	// Now returns the current time. Default value is time.Now.
	Now func() time.Time
}

// MemoryStore is a bounded in-process Store. It protects a single process
// only: receivers behind a load balancer, or on AWS Lambda, need a shared
// store such as verify/redisstore.
type MemoryStore struct {
	mu        sync.Mutex
	max       int
	now       func() time.Time
	entries   map[string]memEntry
	nextToken uint64
	inserts   int
	lastSweep time.Time
}

type memEntry struct {
	state   State
	token   string
	expires time.Time
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(opts MemoryStoreOptions) *MemoryStore {
	s := &MemoryStore{max: opts.MaxEntries, now: opts.Now, entries: make(map[string]memEntry)}
	if s.max <= 0 {
		s.max = DefaultMemoryStoreEntries
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// sweepEvery is how many inserts pass between opportunistic sweeps, and
// minSweepGap the least time between sweeps forced by a full store, so a
// flood cannot make every request walk the whole map.
const (
	sweepEvery  = 4096
	minSweepGap = time.Second
)

// Reserve implements Store.
func (s *MemoryStore) Reserve(_ context.Context, key string, ttl time.Duration) (Reservation, State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if e, ok := s.entries[key]; ok && now.Before(e.expires) {
		return Reservation{}, e.state, nil
	}
	if _, ok := s.entries[key]; !ok {
		s.inserts++
		if s.inserts >= sweepEvery {
			s.sweep(now)
		}
		if len(s.entries) >= s.max {
			if now.Sub(s.lastSweep) >= minSweepGap {
				s.sweep(now)
			}
			if len(s.entries) >= s.max {
				return Reservation{}, StateNew, ErrStoreFull
			}
		}
	}
	s.nextToken++
	r := Reservation{Key: key, Token: strconv.FormatUint(s.nextToken, 36)}
	s.entries[key] = memEntry{state: StateInFlight, token: r.Token, expires: now.Add(ttl)}
	return r, StateNew, nil
}

// Done implements Store.
func (s *MemoryStore) Done(_ context.Context, r Reservation, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[r.Key]
	if !ok || e.token != r.Token || e.state != StateInFlight {
		return ErrReservationLost
	}
	e.state = StateDone
	e.expires = s.now().Add(ttl)
	s.entries[r.Key] = e
	return nil
}

// Release implements Store.
func (s *MemoryStore) Release(_ context.Context, r Reservation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[r.Key]; ok && e.token == r.Token && e.state == StateInFlight {
		delete(s.entries, r.Key)
	}
	return nil
}

// Len returns the number of keys held, expired ones included until swept.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

func (s *MemoryStore) sweep(now time.Time) {
	for k, e := range s.entries {
		if !now.Before(e.expires) {
			delete(s.entries, k)
		}
	}
	s.inserts = 0
	s.lastSweep = now
}
