package warehouse

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// PartitionValue is one key=value of a Hive partition path, in table key order.
type PartitionValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Partition is one partition of a table: values for every partition key, in the
// table's key order. The zero value is the single partition of an unpartitioned table.
type Partition []PartitionValue

// P builds a Partition from key, value pairs: P("dt", "2024-05-01").
func P(kv ...string) Partition {
	if len(kv)%2 != 0 {
		panic("BUG: warehouse.P needs key, value pairs")
	}
	p := make(Partition, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		p = append(p, PartitionValue{Key: kv[i], Value: kv[i+1]})
	}
	return p
}

// Get returns the value of key and whether it is set.
func (p Partition) Get(key string) (string, bool) {
	for _, v := range p {
		if v.Key == key {
			return v.Value, true
		}
	}
	return "", false
}

// Map returns the partition as a map.
func (p Partition) Map() map[string]string {
	m := make(map[string]string, len(p))
	for _, v := range p {
		m[v.Key] = v.Value
	}
	return m
}

// Path is the Hive directory of the partition relative to the table directory
// ("dt=2024-05-01/country=NL"), "" for an unpartitioned table. Values are escaped
// the way Hive escapes them.
func (p Partition) Path() string {
	parts := make([]string, len(p))
	for i, v := range p {
		parts[i] = escapeHive(v.Key) + "=" + escapeHive(v.Value)
	}
	return strings.Join(parts, "/")
}

// String is the same as Path, "<unpartitioned>" for the empty partition.
func (p Partition) String() string {
	if len(p) == 0 {
		return "<unpartitioned>"
	}
	return p.Path()
}

// normalize orders p by keys and checks it names exactly those keys.
func (p Partition) normalize(keys []string) (Partition, error) {
	if len(p) != len(keys) {
		return nil, fmt.Errorf("partition %s: want values for keys %v", p, keys)
	}
	m := p.Map()
	out := make(Partition, len(keys))
	for i, k := range keys {
		v, ok := m[k]
		if !ok {
			return nil, fmt.Errorf("partition %s: missing key %q (keys are %v)", p, k, keys)
		}
		if v == "" {
			return nil, fmt.Errorf("partition %s: empty value for key %q", p, k)
		}
		out[i] = PartitionValue{Key: k, Value: v}
	}
	return out, nil
}

// parsePartitionPath parses "k=v/k2=v2" (a file's directory relative to a table or
// staging root).
func parsePartitionPath(dir string) (Partition, error) {
	if dir == "" || dir == "." {
		return nil, nil
	}
	var p Partition
	for _, seg := range strings.Split(dir, "/") {
		k, v, ok := strings.Cut(seg, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("directory %q is not a Hive partition (want key=value)", seg)
		}
		uk, err1 := url.PathUnescape(k)
		uv, err2 := url.PathUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("directory %q: bad escape", seg)
		}
		p = append(p, PartitionValue{Key: uk, Value: uv})
	}
	return p, nil
}

// escapeHive percent-encodes the characters Hive escapes in partition paths
// (FileUtils.escapePathName) plus anything outside printable ASCII.
func escapeHive(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || strings.IndexByte("\"#%'*/:=?\\{[]^", c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// partitionSet is a set of partitions keyed by Path.
type partitionSet map[string]Partition

func (s partitionSet) add(p Partition) { s[p.Path()] = p }

func (s partitionSet) sorted() []Partition {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Partition, len(keys))
	for i, k := range keys {
		out[i] = s[k]
	}
	return out
}
