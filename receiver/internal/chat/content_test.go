package chat

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestInert(t *testing.T) {
	cases := map[string]string{
		"a\r\nb\rc\u2028d\u2029e":         "a\nb\nc\nd\ne",
		"tab\there":                       "tab here",
		"nul\x00esc\x1b[31m\u0085":        "nulesc[31m",
		"rtl\u202Eabc\u202C\u2066x\u2069": "rtlabcx",
		"marks \u200f\u200e\u061c kept":   "marks \u200f\u200e\u061c kept",
		"👨\u200d👩\u200d👧":                 "👨\u200d👩\u200d👧",
		"bad \xff utf8":                   "bad \uFFFD utf8",
	}
	for in, want := range cases {
		assert.Equal(t, want, inert(in), "%q", in)
	}
	// One-line values are render.OneLine's: no format characters at all.
	assert.Equal(t, "a b", OneLine(" a\n\u202E\u200b b\x00 "))
	assert.Equal(t, "p1 line\nnext\n\np2", Paragraphs("\n p1 line  \r\nnext\n \n\n\r\np2\n\n"))
	assert.Equal(t, "ab…", bounded("abc", 2))
	assert.Equal(t, "a…", bounded("aé", 2), "never half a code point")
	assert.Equal(t, "abc", bounded("abc", 3))
}

func TestClip(t *testing.T) {
	assert.Equal(t, "abc", Clip("abc", 3))
	assert.Equal(t, "ab…", Clip("abcd", 3))
	assert.Equal(t, "a…", Clip("a😀", 2), "no half emoji")
	assert.Equal(t, "…", Clip("abcd", 1))
	assert.Equal(t, "", Clip("abcd", 0))
}
