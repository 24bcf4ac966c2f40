package verify

import (
	"context"
	"hash/maphash"
	"math"
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

// String returns "new", "in-flight" or "done".
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
	// Key is the key given to Reserve.
	Key string
	// Token identifies this reservation among all of Key's: it is
	// unguessable for a shared store, and never reused.
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
//
// A ttl must run out on the wall clock too, the clock the Verifier checks
// timestamps by, not on a monotonic clock alone: the Middleware asks for at
// least twice the tolerance, which covers every instant at which the
// request's timestamp is accepted only as long as the key is held for the
// ttl in wall-clock time. A store that counted the ttl on a monotonic clock
// would forget the id early after the wall clock stepped back (an NTP
// correction, a VM resumed), and let a captured request be replayed. Hold
// a key until the ttl has passed on both clocks, as MemoryStore does, or on
// the wall clock, as SQLStore does.
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

// DefaultMemoryStoreEntries is the capacity of a MemoryStore when
// MemoryStoreOptions.MaxEntries is zero. With the Middleware's default
// retention of 10 minutes it holds the ids of about 160 requests a second;
// past that, new ids are answered 503 until old ones expire. Size it for
// your peak rate times the retention, or use a shared store.
const DefaultMemoryStoreEntries = 100_000

// MemoryStoreOptions configures NewMemoryStore.
type MemoryStoreOptions struct {
	// MaxEntries bounds the number of keys held, in flight or done. When it
	// is reached and no key has expired, Reserve of a new key fails with
	// ErrStoreFull rather than forget an id early (the Middleware answers
	// 503, and the sender retries later), unless EvictDone is set. Default
	// value is DefaultMemoryStoreEntries.
	MaxEntries int
	// EvictDone, when set, lets Reserve of a new key in a full store forget
	// the done key nearest to its expiry instead of failing with
	// ErrStoreFull. Keys in flight are never evicted: when every key is in
	// flight, Reserve still fails with ErrStoreFull. Set it only for records
	// whose early loss merely repeats work, such as the receiver's ledger
	// of delivered sinks; never for the ids of the Middleware, where a
	// forgotten id lets a replay or a duplicate through. Default value is
	// false.
	EvictDone bool
	// Now returns the current time. Keys expire when their ttl has passed
	// both on its monotonic reading and on its wall clock; give the
	// Verifier's Options.Now, if set, so that the wall clock is the one
	// timestamps are checked by. Default value is time.Now.
	Now func() time.Time
}

// MemoryStore is a bounded in-process Store, safe for concurrent use. It
// protects a single process only: receivers behind a load balancer, or on
// AWS Lambda, need a shared store such as verify/redisstore.
//
// Keys are kept in a min-heap by expiry, so expired keys are dropped as new
// ones arrive, at O(log n) each, with no full sweeps. The store holds no
// pointers the garbage collector would have to trace, however many keys it
// holds: entries live in one slice of slots, reused through a free list;
// a key is held as a 128-bit hash under two random per-store seeds (two
// distinct keys collide with a probability of about n²/2¹²⁹, and a sender
// cannot aim for a collision without the seeds); and times are kept as
// offsets from the store's creation on two clocks, the monotonic one and
// the wall clock, and a key expires only once its ttl has passed on both:
// a wall clock stepped forward does not expire ids early, and one stepped
// back keeps them until the wall clock, by which the Verifier checks
// timestamps, has caught up.
type MemoryStore struct {
	mu        sync.Mutex
	max       int
	evictDone bool
	now       func() time.Time
	epoch     time.Time // with its monotonic reading, if now gives one
	epochWall time.Time // without
	// monotonic, when set, replaces the monotonic reading of now: tests
	// step the wall clock alone with it.
	monotonic func() time.Duration
	seeds     [2]maphash.Seed
	index     map[keyHash]int32 // key → slot
	slots     []memEntry
	free      []int32 // unused slots
	byExpiry  []int32 // min-heap of slots on expires
	nextToken uint64
}

type keyHash [2]uint64

type memEntry struct {
	key     keyHash
	token   uint64        // Reservation.Token is its base-36 text
	expires time.Duration // since epoch, on the monotonic clock; orders the heap
	// wallExpires is since epochWall, on the wall clock. The heap is
	// ordered by expires alone: when an entry's monotonic time is up but
	// not its wall time, expire moves expires on by the wall time left.
	wallExpires time.Duration
	state       State
	pos         int32 // in byExpiry
}

var _ Store = (*MemoryStore)(nil)

// holds reports whether r is the reservation in flight on e. The token is
// kept as a number, not a string, to spare the collector one object per
// key; formatting it into a stack buffer allocates nothing.
func (e *memEntry) holds(r Reservation) bool {
	var buf [16]byte
	return e.state == StateInFlight && string(strconv.AppendUint(buf[:0], e.token, 36)) == r.Token
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(opts MemoryStoreOptions) *MemoryStore {
	s := &MemoryStore{
		max:       opts.MaxEntries,
		evictDone: opts.EvictDone,
		now:       opts.Now,
		seeds:     [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		index:     make(map[keyHash]int32),
	}
	if s.max <= 0 {
		s.max = DefaultMemoryStoreEntries
	}
	s.max = min(s.max, math.MaxInt32)
	if s.now == nil {
		s.now = time.Now
	}
	s.epoch = s.now()
	s.epochWall = s.epoch.Round(0)
	return s
}

// Reserve implements Store.
func (s *MemoryStore) Reserve(_ context.Context, key string, ttl time.Duration) (Reservation, State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	s.expire(now)
	h := s.hash(key)
	if i, ok := s.index[h]; ok {
		return Reservation{}, s.slots[i].state, nil
	}
	if len(s.index) >= s.max {
		if !s.evictDone {
			return Reservation{}, StateNew, ErrStoreFull
		}
		victim, ok := s.doneNearestExpiry()
		if !ok {
			return Reservation{}, StateNew, ErrStoreFull
		}
		s.remove(victim)
	}
	s.nextToken++
	r := Reservation{Key: key, Token: strconv.FormatUint(s.nextToken, 36)}
	var i int32
	if n := len(s.free); n > 0 {
		i = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		i = int32(len(s.slots))
		s.slots = append(s.slots, memEntry{})
	}
	s.slots[i] = memEntry{key: h, token: s.nextToken, expires: addSaturated(now.mono, ttl), wallExpires: addSaturated(now.wall, ttl), state: StateInFlight}
	s.index[h] = i
	s.push(i)
	return r, StateNew, nil
}

// Done implements Store.
func (s *MemoryStore) Done(_ context.Context, r Reservation, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	s.expire(now)
	i, ok := s.index[s.hash(r.Key)]
	if !ok {
		return ErrReservationLost
	}
	e := &s.slots[i]
	if !e.holds(r) {
		return ErrReservationLost
	}
	e.state = StateDone
	e.expires = addSaturated(now.mono, ttl)
	e.wallExpires = addSaturated(now.wall, ttl)
	s.fix(int(e.pos))
	return nil
}

// Release implements Store.
func (s *MemoryStore) Release(_ context.Context, r Reservation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.index[s.hash(r.Key)]; ok {
		if s.slots[i].holds(r) {
			s.remove(i)
		}
	}
	return nil
}

// Len returns the number of keys held. Expired keys count until the next
// call that drops them.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.index)
}

// Full reports whether Reserve of a new key would now fail with
// ErrStoreFull: once expired keys are dropped the store holds MaxEntries
// keys and, with EvictDone, none of them is done. A health check can ask
// it without reserving anything.
func (s *MemoryStore) Full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(s.clock())
	if len(s.index) < s.max {
		return false
	}
	if !s.evictDone {
		return true
	}
	_, ok := s.doneNearestExpiry()
	return !ok
}

// addSaturated is a + b, saturated at MaxInt64 rather than wrapped when a
// positive b overflows it: an expiry or a retention that wrapped would lie in the
// past and forget ids at once.
func addSaturated(a, b time.Duration) time.Duration {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// memTime is a time since the store's creation, on both clocks.
type memTime struct {
	mono, wall time.Duration
}

// clock returns the time since the store's creation. The monotonic time is
// the wall time when now gives no monotonic reading, as an injected clock
// does not.
func (s *MemoryStore) clock() memTime {
	t := s.now()
	now := memTime{mono: t.Sub(s.epoch), wall: t.Round(0).Sub(s.epochWall)}
	if s.monotonic != nil {
		now.mono = s.monotonic()
	}
	return now
}

func (s *MemoryStore) hash(key string) keyHash {
	return keyHash{maphash.String(s.seeds[0], key), maphash.String(s.seeds[1], key)}
}

// expire drops every key whose time is up on both clocks. A key whose
// monotonic time is up but not its wall time (the wall clock was stepped
// back) stays, its monotonic expiry moved on by the wall time it has left:
// it is looked at again then, and no sooner.
func (s *MemoryStore) expire(now memTime) {
	for len(s.byExpiry) > 0 {
		i := s.byExpiry[0]
		e := &s.slots[i]
		if now.mono < e.expires {
			return
		}
		if now.wall < e.wallExpires {
			left := e.wallExpires - now.wall
			if left <= 0 { // wrapped: the wall clock is centuries back
				left = math.MaxInt64
			}
			e.expires = addSaturated(now.mono, left)
			s.fix(0)
			continue
		}
		s.remove(i)
	}
}

// remove frees slot i, taking it out of the index and the heap.
func (s *MemoryStore) remove(i int32) {
	e := &s.slots[i]
	delete(s.index, e.key)
	pos, last := int(e.pos), len(s.byExpiry)-1
	if pos != last {
		s.swap(pos, last)
	}
	s.byExpiry = s.byExpiry[:last]
	if pos != last {
		s.fix(pos)
	}
	s.free = append(s.free, i)
}

// doneNearestExpiry returns the slot of the done key that expires first, if
// any. A done entry below another done entry in the heap cannot expire
// earlier, so only the done entries reached from the root through in-flight
// ones are candidates: the walk visits the in-flight entries on that path
// and the frontier below them, O(in-flight) work rather than O(n). It walks
// the implicit tree in preorder without a stack, climbing back through the
// parent index, so it allocates nothing.
func (s *MemoryStore) doneNearestExpiry() (int32, bool) {
	n := len(s.byExpiry)
	best, found := int32(0), false
	for pos := 0; pos < n; {
		i := s.byExpiry[pos]
		if e := &s.slots[i]; e.state == StateDone {
			if !found || e.expires < s.slots[best].expires {
				best, found = i, true
			}
		} else if child := 2*pos + 1; child < n {
			pos = child
			continue
		}
		// Next in preorder: the right sibling of the nearest ancestor-or-self
		// that is a left child and has one.
		for pos > 0 && (pos%2 == 0 || pos+1 >= n) {
			pos = (pos - 1) / 2
		}
		if pos == 0 {
			break
		}
		pos++
	}
	return best, found
}

// The heap code is container/heap's, on the concrete type so that it
// neither boxes entries nor calls through an interface.

func (s *MemoryStore) push(i int32) {
	s.slots[i].pos = int32(len(s.byExpiry))
	s.byExpiry = append(s.byExpiry, i)
	s.up(len(s.byExpiry) - 1)
}

func (s *MemoryStore) fix(pos int) {
	if !s.down(pos) {
		s.up(pos)
	}
}

func (s *MemoryStore) less(a, b int) bool {
	return s.slots[s.byExpiry[a]].expires < s.slots[s.byExpiry[b]].expires
}

func (s *MemoryStore) swap(a, b int) {
	h := s.byExpiry
	h[a], h[b] = h[b], h[a]
	s.slots[h[a]].pos = int32(a)
	s.slots[h[b]].pos = int32(b)
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
