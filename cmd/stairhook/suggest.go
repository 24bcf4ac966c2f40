package main

import (
	"fmt"
	"strings"
)

// spelledOut gives the full word of an abbreviated flag name, so that
// typing the word, or a slip in it, finds the flag: --adress → --addr.
var spelledOut = map[string]string{"addr": "address"}

// didYouMean returns "; did you mean X?" with the one candidate closest to
// typed, or "" when none is close or two are equally close. Close means a
// unique prefix of at least two letters, or at most one edit (two for
// words of five letters or more), an edit being an insertion, a deletion,
// a change or a swap of neighbours. Candidates are shown quoted, or as
// --name when asFlag.
func didYouMean(typed string, candidates []string, asFlag bool) string {
	typed = strings.ToLower(typed)
	if typed == "" || len(typed) > 64 {
		return ""
	}
	best, bestDist, tie := "", 3, false
	prefixed := []string{}
	for _, c := range candidates {
		if len(typed) >= 2 && strings.HasPrefix(c, typed) {
			prefixed = append(prefixed, c)
		}
		d := editDistance(typed, c)
		if long, ok := spelledOut[c]; ok {
			d = min(d, editDistance(typed, long))
		}
		if d > 1 && (d > 2 || len(typed) < 5) {
			continue
		}
		switch {
		case d < bestDist:
			best, bestDist, tie = c, d, false
		case d == bestDist:
			tie = true
		}
	}
	if best == "" || tie {
		if len(prefixed) != 1 {
			return ""
		}
		best = prefixed[0]
	}
	if asFlag {
		return "; did you mean " + flagName(best) + "?"
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the optimal string alignment distance of a and b:
// insertions, deletions, substitutions and swaps of adjacent bytes.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
