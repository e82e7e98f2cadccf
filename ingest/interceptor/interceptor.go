// Package interceptor holds the collector's interceptors (Flume's set plus a user-key
// extractor): timestamp, host, static, regex_filter, regex_extractor, search_replace,
// remove_header, uuid and user_key.
// Each changes events in place between a source and its channels.
package interceptor

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
)

// Timestamp sets Header (default "timestamp") to the time in epoch milliseconds.
type Timestamp struct {
	Header           string
	PreserveExisting bool
	Now              func() time.Time
}

func (t *Timestamp) Intercept(evs []ingest.Event) []ingest.Event {
	h := t.Header
	if h == "" {
		h = "timestamp"
	}
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	v := strconv.FormatInt(now().UnixMilli(), 10)
	for i := range evs {
		if _, ok := evs[i].Headers.Lookup(h); ok && t.PreserveExisting {
			continue
		}
		evs[i].SetHeader(h, v)
	}
	return evs
}

// Static sets a fixed header.
type Static struct {
	Key, Value       string
	PreserveExisting bool
}

func (s *Static) Intercept(evs []ingest.Event) []ingest.Event {
	for i := range evs {
		if _, ok := evs[i].Headers.Lookup(s.Key); ok && s.PreserveExisting {
			continue
		}
		evs[i].SetHeader(s.Key, s.Value)
	}
	return evs
}

// NewHost returns a Static interceptor with the host name (or an IP when useIP).
func NewHost(header string, useIP, preserve bool) (*Static, error) {
	if header == "" {
		header = "host"
	}
	h, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("cannot get host name: %w", err)
	}
	if useIP {
		addrs, err := net.LookupHost(h)
		if err != nil || len(addrs) == 0 {
			return nil, fmt.Errorf("cannot resolve host name %q: %v", h, err)
		}
		h = addrs[0]
	}
	return &Static{Key: header, Value: h, PreserveExisting: preserve}, nil
}

// RegexFilter keeps events whose body matches (or, with Exclude, drops them).
type RegexFilter struct {
	Re      *regexp.Regexp
	Exclude bool
}

func (r *RegexFilter) Intercept(evs []ingest.Event) []ingest.Event {
	out := evs[:0]
	for _, e := range evs {
		if r.Re.Match(e.Body) != r.Exclude {
			out = append(out, e)
		}
	}
	return out
}

// RegexExtractor copies capture groups of the body into headers (Names[i] for group i+1).
type RegexExtractor struct {
	Re    *regexp.Regexp
	Names []string
}

func (r *RegexExtractor) Intercept(evs []ingest.Event) []ingest.Event {
	for i := range evs {
		m := r.Re.FindSubmatch(evs[i].Body)
		for g := 1; g < len(m) && g-1 < len(r.Names); g++ {
			if r.Names[g-1] != "" && m[g] != nil {
				evs[i].SetHeader(r.Names[g-1], string(m[g]))
			}
		}
	}
	return evs
}

// SearchReplace replaces every match of Re in the body with Replace (Flume's
// search_replace: searchPattern, replaceString; $1 or ${name} in Replace are the match's
// groups, as Java's replaceAll takes them). The body is replaced, never changed in place:
// a retried put starts again from the source's bytes.
type SearchReplace struct {
	Re      *regexp.Regexp
	Replace []byte
}

func (s *SearchReplace) Intercept(evs []ingest.Event) []ingest.Event {
	for i := range evs {
		if s.Re.Match(evs[i].Body) {
			evs[i].Body = s.Re.ReplaceAll(evs[i].Body, s.Replace)
		}
	}
	return evs
}

// RemoveHeader drops the headers named in Names and those whose whole name Matching
// matches (Flume's remove_header: withName, fromList, matching).
type RemoveHeader struct {
	Names    []string
	Matching *regexp.Regexp
}

func (r *RemoveHeader) Intercept(evs []ingest.Event) []ingest.Event {
	for i := range evs {
		h := evs[i].Headers[:0]
		for _, x := range evs[i].Headers {
			if slices.Contains(r.Names, x.Key) || r.Matching != nil && r.Matching.MatchString(x.Key) {
				continue
			}
			h = append(h, x)
		}
		clear(evs[i].Headers[len(h):])
		evs[i].Headers = h
	}
	return evs
}

// UUID sets Header (default "id") to a random UUID v4.
type UUID struct {
	Header           string
	PreserveExisting bool
}

func (u *UUID) Intercept(evs []ingest.Event) []ingest.Event {
	h := u.Header
	if h == "" {
		h = "id"
	}
	for i := range evs {
		if _, ok := evs[i].Headers.Lookup(h); ok && u.PreserveExisting {
			continue
		}
		evs[i].SetHeader(h, newUUID())
	}
	return evs
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
