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
