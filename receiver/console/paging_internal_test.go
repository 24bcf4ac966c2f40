package console

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBefore(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		n    int64
		isOK bool
	}{
		{"", 0, true},
		{"before=42", 42, true},
		{"before=0", 0, false},
		{"before=-3", 0, false},
		{"before=x", 0, false},
		{"before=99999999999999999999", 0, false},
	} {
		qv, err := url.ParseQuery(tc.raw)
		assert.NoError(t, err)
		n, ok := before(qv)
		assert.Equal(t, tc.isOK, ok, tc.raw)
		if tc.isOK {
			assert.Equal(t, tc.n, n, tc.raw)
		}
	}
}

func TestNextPage(t *testing.T) {
	assert.Equal(t, "/dead?before=7&sink=s.r.jira&webhook=w", nextPage("/dead", 7, "webhook", "w", "sink", "s.r.jira"))
	assert.Equal(t, "/refused?before=9", nextPage("/refused", 9, "webhook", "", "reason", ""))
	assert.Equal(t, "/refused?before=9&reason=a%26b", nextPage("/refused", 9, "webhook", "", "reason", "a&b"))
}
