// Package redisstore is a verify.Store on Redis, for receivers that run on
// several machines, behind a load balancer or on AWS Lambda, where the
// in-process verify.MemoryStore cannot see the other instances' requests.
//
// Each id is one Redis key, prefix + id, whose value is "f:<token>" while a
// request holds it (in flight) and "d:<token>" once processed (done), with
// the expiry the Middleware asks for. Redis counts a ttl on its own clock;
// the key is also held until the instant the ttl ends on this process's
// wall clock (Options.Now), should that be later, because the Verifier
// checks timestamps by that clock: a receiver whose clock was ahead of
// Redis's and is then stepped back (by NTP) still finds the id of a
// request it may accept again. Every call is one short Lua script,
// atomic on the server and one round trip: Reserve is SET NX PX, reading
// the current value when the key is taken; Done and Release compare the
// token before they write. So of concurrent reservations exactly one wins,
// and no instance can finish or release another instance's reservation.
// Tokens are 128-bit random (crypto/rand).
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	v, err := verify.NewVerifier(verify.Options{Keys: keys, Store: redisstore.New(rdb, redisstore.Options{})})
//
// It needs Redis 7.0 or later (for PEXPIREAT GT): on an older server the
// scripts fail, and requests are answered 503 or 409, never let through
// unrecorded. Errors from Redis are
// returned as they are; the Middleware answers them 503 (fail closed) and
// the sender retries.
package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stairhook/stairhook/verify"
)

// DefaultPrefix starts every key when Options.Prefix is empty.
const DefaultPrefix = "stairhook:"

// Options configures New.
type Options struct {
	// Prefix starts every key the store writes, so that it can share a
	// database with other data, or keep the ids of several webhooks apart.
	// Default value is DefaultPrefix.
	Prefix string
	// Now returns the current time: a key is held until its ttl has passed
	// on Redis's clock and, measured from Now, on this clock too. Give the
	// Verifier's Options.Now, if set. Default value is time.Now.
	Now func() time.Time
}

// Store is a verify.Store on Redis. It is safe for concurrent use, as the
// client is.
type Store struct {
	client redis.UniversalClient
	prefix string
	now    func() time.Time
}

var _ verify.Store = (*Store)(nil)

// ErrUnexpectedValue means a key under the store's prefix holds a value the
// store did not write: the prefix is shared with other data.
var ErrUnexpectedValue = errors.New("redisstore: unexpected value under the key prefix")

// New returns a Store that keeps its keys in client (a *redis.Client,
// *redis.ClusterClient or *redis.Ring, as redis.UniversalClient allows).
func New(client redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{client: client, prefix: opts.Prefix, now: opts.Now}
}

const (
	inFlight = "f:"
	done     = "d:"
)

// reserveScript sets the key if absent, else returns its value: SET NX and
// GET in one atomic step, so a key cannot expire between the two. The key
// expires after the ttl ARGV[2] on Redis's clock or at the unix
// millisecond ARGV[3], whichever is later (PEXPIREAT GT, Redis 7.0).
var reserveScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
	redis.call('PEXPIREAT', KEYS[1], ARGV[3], 'GT')
	return ''
end
return redis.call('GET', KEYS[1])
`)

// doneScript turns the caller's in-flight value into done, with a new
// expiry as Reserve sets it, only if the key still holds that value.
var doneScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
	redis.call('PEXPIREAT', KEYS[1], ARGV[4], 'GT')
	return 1
end
return 0
`)

// releaseScript deletes the key only if it still holds the caller's
// in-flight value.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// Reserve implements verify.Store.
func (s *Store) Reserve(ctx context.Context, key string, ttl time.Duration) (verify.Reservation, verify.State, error) {
	token := rand.Text()
	got, err := reserveScript.Run(ctx, s.client, []string{s.prefix + key}, inFlight+token, millis(ttl), s.until(ttl)).Text()
	if err != nil {
		return verify.Reservation{}, verify.StateNew, fmt.Errorf("redisstore: reserve: %w", err)
	}
	switch {
	case got == "":
		return verify.Reservation{Key: key, Token: token}, verify.StateNew, nil
	case strings.HasPrefix(got, inFlight):
		return verify.Reservation{}, verify.StateInFlight, nil
	case strings.HasPrefix(got, done):
		return verify.Reservation{}, verify.StateDone, nil
	}
	return verify.Reservation{}, verify.StateNew, fmt.Errorf("%w: key %q", ErrUnexpectedValue, s.prefix+key)
}

// Done implements verify.Store.
func (s *Store) Done(ctx context.Context, r verify.Reservation, ttl time.Duration) error {
	if r.Token == "" {
		return verify.ErrReservationLost
	}
	n, err := doneScript.Run(ctx, s.client, []string{s.prefix + r.Key}, inFlight+r.Token, done+r.Token, millis(ttl), s.until(ttl)).Int()
	if err != nil {
		return fmt.Errorf("redisstore: done: %w", err)
	}
	if n != 1 {
		return verify.ErrReservationLost
	}
	return nil
}

// Release implements verify.Store.
func (s *Store) Release(ctx context.Context, r verify.Reservation) error {
	if r.Token == "" {
		return nil
	}
	if err := releaseScript.Run(ctx, s.client, []string{s.prefix + r.Key}, inFlight+r.Token).Err(); err != nil {
		return fmt.Errorf("redisstore: release: %w", err)
	}
	return nil
}

// until is the unix millisecond at which ttl ends on this process's
// clock, saturated rather than wrapped, and at least 1: PEXPIREAT takes a
// positive integer (an instant already past leaves the ttl on Redis's
// clock, which GT keeps).
func (s *Store) until(ttl time.Duration) int64 {
	now := s.now().UnixMilli()
	ms := millis(ttl)
	if now > math.MaxInt64-ms {
		return math.MaxInt64
	}
	return max(1, now+ms)
}

// millis is ttl in whole milliseconds, rounded up and at least 1: PX takes
// a positive integer, and rounding down to 0 would be an error. It rounds
// without adding to ttl, so the longest ttl (the Middleware saturates its
// retention at the largest Duration) stays the longest instead of wrapping
// around to a negative, that is 1 ms, expiry.
func millis(ttl time.Duration) int64 {
	ms := int64(ttl / time.Millisecond)
	if ttl%time.Millisecond > 0 {
		ms++
	}
	return max(1, ms)
}
