package sink_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/stairhook/stairhook/receiver/sink"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"": 0, "0": 0, "-3": 0, "abc": 0, " 5 ": 5 * time.Second, "+5": 5 * time.Second,
		"3600": time.Hour, "3601": time.Hour, // capped
		"99999999999":          time.Hour, // capped, not overflowed
		"99999999999999999999": 0,         // past int64: unreadable
		now.Add(time.Minute).Format(http.TimeFormat):    time.Minute,
		now.Add(-time.Minute).Format(http.TimeFormat):   0,
		now.Add(48 * time.Hour).Format(http.TimeFormat): time.Hour,
	} {
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		assert.Equal(t, want, sink.RetryAfter(h, now), "%q", v)
	}
	assert.Zero(t, sink.RetryAfter(nil, now), "no header at all")
}

func ExampleRetryAfter() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	answer := http.Header{"Retry-After": {"120"}}
	fmt.Println(sink.RetryAfter(answer, now))
	// Output: 2m0s
}
