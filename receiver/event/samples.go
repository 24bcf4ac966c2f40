package event

import (
	"embed"
	"errors"
	"fmt"
	"slices"
)

// samples holds one realistic event per documented type, for tests, for the
// sender tools and for trying a receiver by hand.
//
//go:embed testdata/samples/*.json
var samples embed.FS

// ErrNoSample means Sample was asked for a type that has no sample.
var ErrNoSample = errors.New("event: no sample for this type")

// Sample returns the sample body of type typ, one of SampleTypes: a valid
// event (see Decode) about the account "Acme Corp" with test false. The
// caller owns the returned bytes.
func Sample(typ string) ([]byte, error) {
	if !slices.Contains(knownTypes[:], typ) {
		return nil, fmt.Errorf("%w: %q", ErrNoSample, typ)
	}
	return samples.ReadFile("testdata/samples/" + typ + ".json")
}

// SampleTypes returns the types Sample knows: every entry of KnownTypes, in
// the same order.
func SampleTypes() []string { return KnownTypes() }
