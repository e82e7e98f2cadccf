package groups

import (
	"math"
	"testing"
	"unicode/utf16"
)

// javaHashCode is Java's String.hashCode, computed over the UTF-16 code units.
func javaHashCode(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return h
}

func TestPartitionForIsKafkas(t *testing.T) {
	// Known values of Java's "…".hashCode(): "hello" is 99162322 (% 50 = 22);
	// "polygenelubricants" is Integer.MIN_VALUE, which Kafka's Utils.abs maps to 0.
	if got := PartitionFor("hello", 50); got != 22 {
		t.Errorf("hello: %d, want 22", got)
	}
	if javaHashCode("polygenelubricants") != math.MinInt32 {
		t.Fatal("BUG: the test's hashCode is not Java's")
	}
	if got := PartitionFor("polygenelubricants", 50); got != 0 {
		t.Errorf("polygenelubricants: %d, want 0", got)
	}
	// Negative hash codes, non-ASCII and characters outside the BMP (surrogate pairs).
	for _, g := range []string{"", "console-consumer-12345", "groupe-é", "组-消费者", "emoji-😀-group", "a very long group id that overflows many times over"} {
		for _, n := range []int32{1, 3, 50} {
			h := javaHashCode(g)
			if h < 0 && h != math.MinInt32 {
				h = -h
			} else if h == math.MinInt32 {
				h = 0
			}
			if got := PartitionFor(g, n); got != h%n {
				t.Errorf("%q over %d: %d, want %d", g, n, got, h%n)
			}
		}
	}
}
