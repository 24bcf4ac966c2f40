package sink

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter caps the delay [RetryAfter] reads: the longest wait the
// server passes on to a sender.
const MaxRetryAfter = time.Hour

// RetryAfter reads the Retry-After header of a destination's answer, as
// delay-seconds or an HTTP date (measured from now), for the After of a
// [*RetryAfterError]. It is capped at [MaxRetryAfter]; it is zero when the
// header is missing, unreadable, not positive or in the past, and then the
// failure is best returned as a plain transient error, which the queue
// retries on its own schedule.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		d = time.Duration(min(secs, int64(MaxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, MaxRetryAfter))
}
