package event

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKnownTypesIsACopy: a caller changing the list it got changes neither
// the next call nor what Sample and the server accept.
func TestKnownTypesIsACopy(t *testing.T) {
	types := KnownTypes()
	require.Len(t, types, 11)
	assert.Equal(t, TypeAccountPersonnelChange, types[0])
	types[0] = "changed"
	assert.Equal(t, TypeAccountPersonnelChange, KnownTypes()[0])
	assert.Equal(t, TypeAccountPersonnelChange, SampleTypes()[0])
	_, err := Sample(TypeAccountPersonnelChange)
	assert.NoError(t, err)
	_, err = Sample("changed")
	assert.ErrorIs(t, err, ErrNoSample)
}
