package warehouse

import (
	"testing"
)

// FuzzPartitionPath: any key/value survives Hive escaping and parsing, and the
// escaped form never contains a path separator or a second "=".
func FuzzPartitionPath(f *testing.F) {
	for _, s := range []string{"2024-05-01", "a/b", "x=y", "100%", "ünï", "\x00\xff", "..", " ", "%41"} {
		f.Add("dt", s)
	}
	f.Fuzz(func(t *testing.T, k, v string) {
		if k == "" {
			return
		}
		p := P(k, v)
		path := p.Path()
		got, err := parsePartitionPath(path)
		if err != nil {
			t.Fatalf("parse(%q): %v", path, err)
		}
		if len(got) != 1 || got[0] != p[0] {
			t.Fatalf("round trip %q -> %q -> %v", v, path, got)
		}
		if len(path) > 0 && (path[0] == '/' || countByte(path, '/') != 0 || countByte(path, '=') != 1) {
			t.Fatalf("escaped %q", path)
		}
	})
}

func countByte(s string, c byte) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			n++
		}
	}
	return n
}

// FuzzDecodeManifest: a damaged manifest is an error, never a panic.
func FuzzDecodeManifest(f *testing.F) {
	f.Add([]byte(`{"format_version":1,"snapshot_id":1,"schema":[{"name":"a","type":{"kind":"list","elem":{"name":"item","type":{"kind":"map","key":{"name":"k","type":{"kind":"string"}},"value":{"name":"v","type":{"kind":"int64"}}}}}}]}`))
	f.Add([]byte(`{"format_version":1,"schema":[{"name":"t","type":{"kind":"timestamp","unit":"us","tz":"UTC"}}],"files":[{"path":"dt=1/part-x.parquet","partition":[{"key":"dt","value":"1"}]}]}`))
	f.Add([]byte(`{"format_version":1,"schema":[{"name":"s","type":{"kind":"struct","fields":[{"name":"x","type":null}]}}]}`))
	f.Add([]byte(`{}`))
	tb := &Table{name: "ods_x", dir: "/nonexistent"}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeManifest(tb, data, "fuzz.json")
		if err == nil && s.Schema == nil {
			t.Fatal("decoded without a schema")
		}
	})
}
