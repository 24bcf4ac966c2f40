package lambda

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestSeparateEntries covers the rule that turns the commas AWS put between
// signature lines back into entry separators, and the commas it leaves.
func TestSeparateEntries(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		// Lines joined by AWS.
		{"two lines", "v1,AAA=,v1,BBB=", "v1,AAA= v1,BBB="},
		{"three lines", "v1,AAA=,v1,BBB=,v1,CCC=", "v1,AAA= v1,BBB= v1,CCC="},
		{"space after the comma", "v1,AAA=, v1,BBB=", "v1,AAA=  v1,BBB="},
		{"tab after the comma", "v1,AAA=,\tv1,BBB=", "v1,AAA= \tv1,BBB="},
		{"lines holding several entries", "v1,AAA= v1,BBB=,v1,CCC=", "v1,AAA= v1,BBB= v1,CCC="},
		{"other versions", "v2,xyz,v1,AAA=,v10,q", "v2,xyz v1,AAA= v10,q"},
		{"unknown value with commas", "v2,a,b,v1,AAA=", "v2,a,b v1,AAA="},
		{"empty first line", ",v1,AAA=", " v1,AAA="},
		{"space before the comma", "v1,AAA= ,v1,BBB=", "v1,AAA=  v1,BBB="},
		{"upper-case V", "v1,AAA=,V1,BBB=", "v1,AAA= V1,BBB="},
		{"version with a letter", "v1,AAA=,v1a,BBB=", "v1,AAA= v1a,BBB="},
		{"version with a letter first", "v1a,BBB=,v1,AAA=", "v1a,BBB= v1,AAA="},

		// Left alone.
		{"one entry", "v1,AAA=", "v1,AAA="},
		{"space-separated", "v1,AAA= v1,BBB=", "v1,AAA= v1,BBB="},
		{"empty", "", ""},
		{"the comma after the version", "v1,v1,AAA=", "v1,v1,AAA="},
		{"not a version next", "v1,AAA=,x1,BBB=", "v1,AAA=,x1,BBB="},
		{"v without digits", "v1,AAA=,v,BBB=", "v1,AAA=,v,BBB="},
		{"v and a letter", "v1,AAA=,va,BBB=", "v1,AAA=,va,BBB="},
		{"version token too long", "v1,AAA=,v1234567890abcdefg,BBB=", "v1,AAA=,v1234567890abcdefg,BBB="},
		{"token not a version inside an unknown value", "v2,a,b,c", "v2,a,b,c"},
		{"version without its comma", "v1,AAA=,v1", "v1,AAA=,v1"},
		{"trailing comma", "v1,AAA=,", "v1,AAA=,"},
		{"legacy value first", "sha256=abc,v1,AAA=", "sha256=abc,v1,AAA="},
		{"legacy values", "sha256=abc,sha256=def", "sha256=abc,sha256=def"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := separateEntries(c.in)
			assert.Equal(t, c.want, got)
			assert.Len(t, got, len(c.in), "the verifier's length limit must see the same length")
		})
	}
}
