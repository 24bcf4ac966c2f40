package redisstore

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestMillis(t *testing.T) {
	for _, c := range []struct {
		ttl  time.Duration
		want int64
	}{
		{-time.Second, 1},
		{0, 1},
		{1, 1},
		{time.Millisecond, 1},
		{time.Millisecond + 1, 2},
		{10 * time.Minute, 600_000},
		{math.MaxInt64, math.MaxInt64/int64(time.Millisecond) + 1},
	} {
		assert.Equal(t, c.want, millis(c.ttl), "ttl %d", int64(c.ttl))
	}
}

func TestUntil(t *testing.T) {
	at := time.UnixMilli(1_764_115_200_000)
	s := &Store{now: func() time.Time { return at }}
	assert.Equal(t, int64(1_764_115_200_000+600_000), s.until(10*time.Minute))
	assert.Equal(t, int64(1_764_115_200_001), s.until(0), "at least a millisecond, as PX")
	assert.Equal(t, int64(1_764_115_200_000)+math.MaxInt64/int64(time.Millisecond)+1, s.until(math.MaxInt64), "the largest ttl")
	late := &Store{now: func() time.Time { return time.UnixMilli(math.MaxInt64 - 1000) }}
	assert.Equal(t, int64(math.MaxInt64), late.until(10*time.Second), "saturated, not wrapped into the past")
	before := &Store{now: func() time.Time { return time.UnixMilli(-5000) }}
	assert.Equal(t, int64(1), before.until(time.Second), "positive for PEXPIREAT")
}
