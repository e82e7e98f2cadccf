package interceptor

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

var validJSONCorpus = []string{
	``, ` `, `{}`, `[]`, `{"a":1}`, ` {"a" : [1, 2.5, -0, 1e9, 1E+2, -3.25e-7, true, false, null]} `,
	`"plain"`, `"esc \" \\ \/ \b \f \n \r \t \u00e9 \uABCD"`, `"bad \x"`, `"bad \u12"`, `"bad \u12g4"`,
	"\"ctl \x01\"", "\"tab \t in string\"", "\"del \x7f and high \xff\xfe\"", `"unterminated`, `"ends with \`,
	`01`, `-`, `-01`, `1.`, `.5`, `1e`, `1e+`, `+1`, `1.5e3.2`, `0x10`, `tru`, `nul`, `truex`, `[1,]`, `{"a":1,}`,
	`{"a"}`, `{"a":}`, `{,}`, `{"a":1 "b":2}`, `[1 2]`, `{"a":1}}`, `{"a":1} x`, `{"a":1}` + "\n\r\t ",
	"{\"a\":1}\v", `[[[[]]]]`, `{"a":{"b":{"c":[{"d":"}"}]}}}`, `"` + strings.Repeat("x", 23) + `"`,
	`"` + strings.Repeat("y", 40) + `\"` + strings.Repeat("z", 9) + `"`,
	`"` + strings.Repeat("a", 15) + "\x1f" + `"`, `"` + strings.Repeat("b", 16) + `\`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
	strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
}

func TestValidJSONMatchesEncodingJSON(t *testing.T) {
	for _, s := range validJSONCorpus {
		if got, want := validJSON([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("%.60q: validJSON %v, json.Valid %v", s, got, want)
		}
	}
	// Every quote/backslash/control byte at every position of a word-sized scan.
	for _, c := range []byte{'"', '\\', 0, 0x1f, 0x20, 0x7f, 0x80, 0xff, 'x'} {
		for pos := 0; pos < 20; pos++ {
			body := []byte(strings.Repeat("x", 20))
			body[pos] = c
			s := `"` + string(body) + `"`
			if got, want := validJSON([]byte(s)), json.Valid([]byte(s)); got != want {
				t.Errorf("%q: validJSON %v, json.Valid %v", s, got, want)
			}
		}
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, s := range validJSONCorpus {
		if len(s) < 200 {
			f.Add([]byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("%q: validJSON %v, json.Valid %v", b, got, want)
		}
	})
}

// BenchmarkValidJSON compares validJSON with encoding/json.Valid on benchmark-shaped lines.
func BenchmarkValidJSON(b *testing.B) {
	for _, size := range []int{100, 1024} {
		line := []byte(`{"user_id":"u123","seq":4567,"p":"` + strings.Repeat("x", size-36) + `"}`)
		for _, impl := range []struct {
			name string
			f    func([]byte) bool
		}{{"validJSON", validJSON}, {"json.Valid", json.Valid}} {
			b.Run(impl.name+"/line="+strconv.Itoa(size), func(b *testing.B) {
				b.SetBytes(int64(len(line)))
				for i := 0; i < b.N; i++ {
					if !impl.f(line) {
						b.Fatal("invalid")
					}
				}
			})
		}
	}
}
