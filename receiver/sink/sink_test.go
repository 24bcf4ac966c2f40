package sink_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/stairhook/stairhook/receiver/sink"
)

func TestPermanent(t *testing.T) {
	assert.NoError(t, sink.Permanent(nil))
	base := errors.New("400 bad request")
	err := sink.Permanent(base)
	assert.ErrorIs(t, err, sink.ErrPermanent)
	assert.ErrorIs(t, err, base)
	assert.Equal(t, base.Error(), err.Error(), "the text is the failure's own")
	assert.NotErrorIs(t, base, sink.ErrPermanent)
}

func TestRetryAfterError(t *testing.T) {
	base := errors.New("429 too many requests")
	var err error = &sink.RetryAfterError{Err: base, After: 3 * time.Second}
	assert.ErrorIs(t, err, base)
	assert.NotErrorIs(t, err, sink.ErrPermanent)
	assert.Equal(t, base.Error(), err.Error())
}

func TestReasonClass(t *testing.T) {
	base := errors.New("550 no such user SECRET-DETAIL")
	assert.Equal(t, "unclassified", sink.ReasonClass(base))
	assert.Equal(t, "unclassified", sink.ReasonClass(nil))
	classed := sink.Classed("smtp 550", base)
	assert.Equal(t, base.Error(), classed.Error())
	assert.ErrorIs(t, classed, base)
	// Seen through Permanent, fmt wrapping and a RetryAfterError, in
	// either order with Permanent.
	assert.Equal(t, "smtp 550", sink.ReasonClass(sink.Permanent(classed)))
	assert.Equal(t, "smtp 550", sink.ReasonClass(sink.Classed("smtp 550", sink.Permanent(base))))
	assert.Equal(t, "smtp 550", sink.ReasonClass(fmt.Errorf("email: %w", classed)))
	assert.Equal(t, "smtp 550", sink.ReasonClass(&sink.RetryAfterError{Err: classed}))
	// The outermost class wins.
	assert.Equal(t, "smtp tls or auth", sink.ReasonClass(sink.Classed("smtp tls or auth", classed)))
}
