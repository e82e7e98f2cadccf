// Package suggest finds the names a mistyped one was meant to be, as cobra does for
// commands ("did you mean …?"): those within an edit distance of 2, case aside, or that
// start with the word typed. Config keys, environment variables and collector component
// keys use it.
package suggest

import (
	"slices"
	"strings"
)

// MaxDistance is the largest edit distance a suggestion may be from the word typed
// (cobra's SuggestionsMinimumDistance).
const MaxDistance = 2

// For returns the candidates word was likely meant to be, closest first (ties in
// candidate order), without word itself.
func For(word string, candidates []string) []string {
	type hit struct {
		s string
		d int
	}
	var hits []hit
	lw := strings.ToLower(word)
	for _, c := range candidates {
		if c == word || slices.ContainsFunc(hits, func(h hit) bool { return h.s == c }) {
			continue
		}
		lc := strings.ToLower(c)
		d := distance(lw, lc)
		if d <= MaxDistance || (len(lw) > 1 && strings.HasPrefix(lc, lw)) {
			hits = append(hits, hit{c, d})
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int { return a.d - b.d })
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.s
	}
	return out
}

// DidYouMean is For as a phrase to add to an error message: ` (did you mean "a" or
// "b"?)`, or "" when nothing is close.
func DidYouMean(word string, candidates []string) string {
	s := For(word, candidates)
	if len(s) == 0 {
		return ""
	}
	if len(s) > 3 {
		s = s[:3]
	}
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = `"` + x + `"`
	}
	return " (did you mean " + strings.Join(q, " or ") + "?)"
}

// distance is the Levenshtein distance of a and b, in bytes.
func distance(a, b string) int {
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
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
