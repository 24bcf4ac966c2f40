package verify_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stairhook/stairhook/verify"
)

func TestReason(t *testing.T) {
	tests := []struct {
		err    error
		code   string
		status int
	}{
		{verify.ErrMissingSignature, "missing_signature", http.StatusBadRequest},
		{verify.ErrMalformedHeader, "malformed_header", http.StatusBadRequest},
		{verify.ErrTimestampTooOld, "timestamp_too_old", http.StatusUnauthorized},
		{verify.ErrTimestampTooNew, "timestamp_too_new", http.StatusUnauthorized},
		{verify.ErrNoMatchingSignature, "no_matching_signature", http.StatusUnauthorized},
		{verify.ErrBodyTooLarge, "body_too_large", http.StatusRequestEntityTooLarge},
		{verify.ErrInFlight, "in_flight", http.StatusConflict},
		{verify.ErrBusy, "busy", http.StatusServiceUnavailable},
		{verify.ErrStoreUnavailable, "store_unavailable", http.StatusServiceUnavailable},
		{fmt.Errorf("wrapped: %w", verify.ErrNoMatchingSignature), "no_matching_signature", http.StatusUnauthorized},
		{errors.New("anything else"), "store_unavailable", http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		code, status := verify.Reason(tt.err)
		assert.Equal(t, tt.code, code, tt.err.Error())
		assert.Equal(t, tt.status, status, tt.err.Error())
	}
}

func ExampleReason() {
	code, status := verify.Reason(fmt.Errorf("signed 312 s in the future: %w", verify.ErrTimestampTooNew))
	fmt.Println(code, status)
	// Output: timestamp_too_new 401
}
