package ingest

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"testing"
	"testing/iotest"
)

// reference splits the way LineReader must: at "\n", dropping one "\r" before it, cutting
// at max, keeping an unterminated tail as a last line.
func reference(data []byte, max int) []string {
	var out []string
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var line []byte
		if i < 0 {
			line, data = data, nil
		} else {
			line, data = data[:i], data[i+1:]
			line = bytes.TrimSuffix(line, []byte("\r"))
		}
		if len(line) > max {
			line = line[:max]
		}
		out = append(out, string(line))
	}
	return out
}

type chunkReader struct {
	data []byte
	rng  *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.data), 1+c.rng.Intn(37))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func readAll(r io.Reader, max int) ([]string, int64) {
	lr := NewLineReader(r, max)
	var out []string
	var n int64
	for {
		ln, err := lr.Next()
		if err != nil {
			if last, ok := lr.Flush(); ok {
				out = append(out, string(last.Text))
				n += last.N
			}
			return out, n
		}
		out = append(out, string(ln.Text))
		n += ln.N
	}
}

func checkLines(t *testing.T, data []byte, max int) {
	t.Helper()
	want := reference(data, max)
	for name, r := range map[string]io.Reader{
		"whole":   bytes.NewReader(data),
		"bytes":   iotest.OneByteReader(bytes.NewReader(data)),
		"chunks":  &chunkReader{data: data, rng: rand.New(rand.NewSource(int64(len(data))))},
		"halfies": iotest.HalfReader(bytes.NewReader(data)),
	} {
		got, n := readAll(r, max)
		if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != len(want) {
			t.Fatalf("%s, max %d, %q:\n got %q\nwant %q", name, max, data, got, want)
		}
		if n != int64(len(data)) {
			t.Fatalf("%s: lines account for %d bytes of %d", name, n, len(data))
		}
	}
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("ab", 100000)
	for _, s := range []string{"", "a", "a\n", "a\r\n", "\r\n", "\n\n", "a\rb\n", "x\r", "one\ntwo\r\nthree",
		"ünï\r\ncödé\n", long + "\r\n" + long + "\n", "abc\r\n", "abcd\r\nxy\n"} {
		for _, max := range []int{1, 3, 4, 5, 1 << 20} {
			checkLines(t, []byte(s), max)
		}
	}
}

func TestLineReaderMarksBadInput(t *testing.T) {
	lr := NewLineReader(strings.NewReader("ok\n12345678\nbad\xff\nnul\x00\n"), 5)
	var reasons []string
	for {
		ln, err := lr.Next()
		if err != nil {
			break
		}
		reasons = append(reasons, LineEvent(ln).Headers.Get(HeaderError))
	}
	want := "[ line too long: 8 bytes, cut at 5 invalid utf-8 binary data]"
	if fmt.Sprint(reasons) != want {
		t.Fatalf("reasons %q", reasons)
	}
}

func FuzzLineReader(f *testing.F) {
	for _, s := range []string{"", "a\r\nb", "\r\r\n", strings.Repeat("x", 70000) + "\n"} {
		f.Add([]byte(s), uint16(4))
	}
	f.Fuzz(func(t *testing.T, data []byte, max uint16) {
		checkLines(t, data, int(max)%100+1)
	})
}
