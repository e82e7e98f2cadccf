package streaming

import (
	"bytes"
	"fmt"
	"testing"
)

// TestByteArena: copies hold their bytes across blocks, a null key stays nil and an
// empty one empty, and appending to a copy never overwrites its neighbour.
func TestByteArena(t *testing.T) {
	var a byteArena
	var in, out [][]byte
	for i := range 2000 {
		var b []byte
		switch i % 5 {
		case 0:
			b = nil
		case 1:
			b = []byte{}
		default:
			b = bytes.Repeat(fmt.Appendf(nil, "%d,", i), i%37)
		}
		if a.free() < len(b) {
			a.grow(len(b), 64)
		}
		in, out = append(in, b), append(out, a.copy(b))
	}
	for i, c := range out {
		if (c == nil) != (in[i] == nil) || !bytes.Equal(c, in[i]) {
			t.Fatalf("copy %d is %q (nil %v), want %q (nil %v)", i, c, c == nil, in[i], in[i] == nil)
		}
	}
	for i := range out {
		out[i] = append(out[i], '!')
	}
	for i, c := range out {
		if !bytes.Equal(c[:len(c)-1], in[i]) {
			t.Fatalf("copy %d overwritten: %q, want %q", i, c, in[i])
		}
	}
}
