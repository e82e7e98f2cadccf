package broker

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handlerFn answers one decoded request. A nil response means "send nothing" (acks=0
// produce); an error closes the connection. Protocol errors go into the response.
type handlerFn func(c *conn, req kmsg.Request) (kmsg.Response, error)

type handler struct {
	min, max int16
	fn       handlerFn
}

// handlers is the registration table: every NN_<api>.go file adds its key and version
// range from init(), so adding an API (e.g. the group coordinator's) is one new file.
var handlers = map[int16]handler{}

// register adds an API key's handler; it panics on a duplicate (a BUG at init time).
func register(key, min, max int16, fn handlerFn) {
	if _, dup := handlers[key]; dup {
		panic("BUG: api key registered twice: " + kmsg.NameForKey(key))
	}
	if r := kmsg.RequestForKey(key); r == nil || r.MaxVersion() < max {
		panic("BUG: kmsg does not know " + kmsg.NameForKey(key) + " up to the registered version")
	}
	handlers[key] = handler{min: min, max: max, fn: fn}
}

// apiKeys lists the registered keys in order, for ApiVersions.
func apiKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]int16, 0, len(handlers))
	for k := range handlers {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(keys))
	for _, k := range keys {
		ak := kmsg.NewApiVersionsResponseApiKey()
		ak.ApiKey, ak.MinVersion, ak.MaxVersion = k, handlers[k].min, handlers[k].max
		out = append(out, ak)
	}
	return out
}

// dupKeys are the keys (topic names, partitions, config resources) a request names more
// than once. Kafka answers such a key once with INVALID_REQUEST and acts on none of its
// copies (CreateTopics, CreatePartitions, DeleteTopics, AlterConfigs,
// IncrementalAlterConfigs); ListOffsets answers every copy. A key maps to true until
// its first copy has been answered.
type dupKeys[K comparable] map[K]bool

// findDups returns the keys that occur more than once in keys.
func findDups[K comparable](keys []K) dupKeys[K] {
	seen := make(map[K]bool, len(keys))
	d := dupKeys[K]{}
	for _, k := range keys {
		if seen[k] {
			d[k] = true
		}
		seen[k] = true
	}
	return d
}

// take reports whether k is named more than once and, if so, whether this is its first
// copy, the one to answer (later copies are skipped).
func (d dupKeys[K]) take(k K) (dup, first bool) {
	first, dup = d[k]
	if dup {
		d[k] = false
	}
	return dup, first
}
