package main

import (
	"bytes"
	"testing"

	"github.com/stairhook/stairhook/testvectors"
)

// TestVectorsUpToDate regenerates the vectors in memory and compares them
// with the embedded file byte for byte, so that vectors.json is only ever
// changed by changing this generator and running `go generate ./testvectors`.
func TestVectorsUpToDate(t *testing.T) {
	want, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	got := testvectors.Bytes()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("testvectors/vectors.json differs from the generator's output at byte %d (file %d bytes, generator %d bytes); run `go generate ./testvectors` and never edit the JSON by hand", i, len(got), len(want))
	}
}

// TestGenerateDeterministic guards against map order, clocks or randomness
// leaking into the output.
func TestGenerateDeterministic(t *testing.T) {
	a, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	b, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two runs of the generator differ")
	}
}

// TestStreamIsSeeded checks the stand-in for randomness: fixed per label,
// different between labels.
func TestStreamIsSeeded(t *testing.T) {
	if !bytes.Equal(stream("x", 100), stream("x", 100)) {
		t.Fatal("stream is not deterministic")
	}
	if bytes.Equal(stream("x", 32), stream("y", 32)) {
		t.Fatal("stream ignores its label")
	}
	if !bytes.HasPrefix(stream("x", 100), stream("x", 40)) {
		t.Fatal("stream of a shorter length is not a prefix")
	}
}
