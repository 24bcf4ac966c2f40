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
// The Middleware waits for every call, so a store on the network must bound
// them in time (as the read and write timeouts of a Redis client do); an
// error is answered 503, never taken for StateNew.
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
	// MaxEntries bounds the number of keys held, in flight or done. When it
	// is reached and no key has expired, Reserve of a new key fails with
	// ErrStoreFull rather than forget an id early (the Middleware answers
	// 503, and the sender retries later). Default value is
	// DefaultMemoryStoreEntries.
	MaxEntries int
	// Now returns the current time. Default value is time.Now.
	Now func() time.Time
}

// MemoryStore is a bounded in-process Store, safe for concurrent use. It
// protects a single process only: receivers behind a load balancer, or on
// AWS Lambda, need a shared store such as verify/redisstore.
//
// Keys are kept in a min-heap by expiry, so expired keys are dropped as new
// ones arrive at O(log n) each, with no full sweeps.
type MemoryStore struct {
	mu        sync.Mutex
	max       int
	now       func() time.Time
	entries   map[string]*memEntry
	byExpiry  []*memEntry // min-heap on expires
	nextToken uint64
}

type memEntry struct {
	key     string
	state   State
	token   string
	expires time.Time
	index   int // in byExpiry
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(opts MemoryStoreOptions) *MemoryStore {
	s := &MemoryStore{max: opts.MaxEntries, now: opts.Now, entries: make(map[string]*memEntry)}
	if s.max <= 0 {
		s.max = DefaultMemoryStoreEntries
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Reserve implements Store.
func (s *MemoryStore) Reserve(_ context.Context, key string, ttl time.Duration) (Reservation, State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expire(now)
	if e, ok := s.entries[key]; ok {
		return Reservation{}, e.state, nil
	}
	if len(s.entries) >= s.max {
		return Reservation{}, StateNew, ErrStoreFull
	}
	s.nextToken++
	r := Reservation{Key: key, Token: strconv.FormatUint(s.nextToken, 36)}
	e := &memEntry{key: key, state: StateInFlight, token: r.Token, expires: now.Add(ttl)}
	s.entries[key] = e
	s.push(e)
	return r, StateNew, nil
}

// Done implements Store.
func (s *MemoryStore) Done(_ context.Context, r Reservation, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expire(now)
	e, ok := s.entries[r.Key]
	if !ok || e.token != r.Token || e.state != StateInFlight {
		return ErrReservationLost
	}
	e.state = StateDone
	e.expires = now.Add(ttl)
	s.fix(e.index)
	return nil
}

// Release implements Store.
func (s *MemoryStore) Release(_ context.Context, r Reservation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[r.Key]; ok && e.token == r.Token && e.state == StateInFlight {
		s.remove(e)
	}
	return nil
}

// Len returns the number of keys held. Expired keys count until the next
// call that drops them.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// expire drops every key whose time is up.
func (s *MemoryStore) expire(now time.Time) {
	for len(s.byExpiry) > 0 && !now.Before(s.byExpiry[0].expires) {
		s.remove(s.byExpiry[0])
	}
}

func (s *MemoryStore) remove(e *memEntry) {
	delete(s.entries, e.key)
	h := s.byExpiry
	last := len(h) - 1
	i := e.index
	if i != last {
		s.swap(i, last)
	}
	h[last] = nil
	s.byExpiry = h[:last]
	if i != last {
		s.fix(i)
	}
}

// The heap code is container/heap's, on the concrete type so that it
// neither boxes entries nor calls through an interface.

func (s *MemoryStore) push(e *memEntry) {
	e.index = len(s.byExpiry)
	s.byExpiry = append(s.byExpiry, e)
	s.up(e.index)
}

func (s *MemoryStore) fix(i int) {
	if !s.down(i) {
		s.up(i)
	}
}

func (s *MemoryStore) less(i, j int) bool {
	return s.byExpiry[i].expires.Before(s.byExpiry[j].expires)
}

func (s *MemoryStore) swap(i, j int) {
	h := s.byExpiry
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (s *MemoryStore) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !s.less(j, i) {
			break
		}
		s.swap(i, j)
		j = i
	}
}

func (s *MemoryStore) down(i0 int) bool {
	n := len(s.byExpiry)
	i := i0
	for {
		j1 := 2*i + 1
		if j1 >= n || j1 < 0 {
			break
		}
		j := j1
		if j2 := j1 + 1; j2 < n && s.less(j2, j1) {
			j = j2
		}
		if !s.less(j, i) {
			break
		}
		s.swap(i, j)
		i = j
	}
	return i > i0
}
