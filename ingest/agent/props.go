package agent

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tagpipe/tagpipe/internal/suggest"
)

// Props are one component's settings as flat key → text (Flume's model), read through
// typed getters that remember which keys were used, so leftovers are reported as unknown
// keys with their full name.
type Props struct {
	where string // "ingest.agents.a1.sources.r1" or "a1.sources.r1"
	m     map[string]string
	used  map[string]bool
	// asked: every key the component read, set or not, in order: an unknown key's
	// "did you mean" candidates.
	asked []string
	errs  []error
}

func newProps(where string, m map[string]string) *Props {
	return &Props{where: where, m: m, used: map[string]bool{}}
}

func (p *Props) key(k string) string { return p.where + "." + k }

func (p *Props) fail(k, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", p.key(k), fmt.Sprintf(format, args...)))
}

func (p *Props) raw(k string) (string, bool) {
	p.asked = append(p.asked, k)
	v, ok := p.m[k]
	if ok {
		p.used[k] = true
	}
	return strings.TrimSpace(v), ok
}

// Has reports whether k is set.
func (p *Props) Has(k string) bool {
	p.asked = append(p.asked, k)
	_, ok := p.m[k]
	return ok
}

func (p *Props) Str(k, def string) string {
	if v, ok := p.raw(k); ok {
		return v
	}
	return def
}

func (p *Props) Required(k string) string {
	v, ok := p.raw(k)
	if !ok || v == "" {
		p.fail(k, "is required")
	}
	return v
}

func (p *Props) Int(k string, def int64) int64 {
	v, ok := p.raw(k)
	if !ok {
		return def
	}
	n, err := parseSize(v)
	if err != nil {
		p.fail(k, "bad value %q: want an integer (k/m/g suffixes allowed)", v)
		return def
	}
	return n
}

func parseSize(v string) (int64, error) {
	mult := int64(1)
	l := strings.ToLower(v)
	for _, s := range []struct {
		suf string
		m   int64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000}, {"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}} {
		if strings.HasSuffix(l, s.suf) {
			mult, l = s.m, strings.TrimSuffix(l, s.suf)
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(l), 10, 64)
	return n * mult, err
}

func (p *Props) Bool(k string, def bool) bool {
	v, ok := p.raw(k)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(k, "bad value %q: want true or false", v)
		return def
	}
	return b
}

// Dur reads a duration: "5s", "250ms", or a bare integer in unit (Flume's numbers).
func (p *Props) Dur(k string, def, unit time.Duration) time.Duration {
	v, ok := p.raw(k)
	if !ok {
		return def
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(n) * unit
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.fail(k, "bad value %q: want a duration like \"5s\"", v)
		return def
	}
	return d
}

// List reads a space- or comma-separated list.
func (p *Props) List(k string) []string {
	v, _ := p.raw(k)
	return strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
}

func (p *Props) Regexp(k string) *regexp.Regexp {
	v, ok := p.raw(k)
	if !ok || v == "" {
		return nil
	}
	re, err := regexp.Compile(v)
	if err != nil {
		p.fail(k, "bad regexp %q: %v", v, err)
	}
	return re
}

func (p *Props) OneOf(k, def string, allowed ...string) string {
	v := p.Str(k, def)
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	p.fail(k, "bad value %q: want one of %s", v, strings.Join(allowed, ", "))
	return def
}

// Sub returns the keys below prefix ("headers.f1." → map of the rest) and marks them used.
func (p *Props) Sub(prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range p.m {
		if strings.HasPrefix(k, prefix) {
			out[strings.TrimPrefix(k, prefix)] = strings.TrimSpace(v)
			p.used[k] = true
		}
	}
	return out
}

// Child is a nested component (an interceptor) with its own key prefix.
func (p *Props) Child(prefix string) *Props {
	c := newProps(p.key(strings.TrimSuffix(prefix, ".")), map[string]string{})
	for k, v := range p.m {
		if strings.HasPrefix(k, prefix) {
			c.m[strings.TrimPrefix(k, prefix)] = v
			p.used[k] = true
		}
	}
	return c
}

// Err reports bad values and, when all is true, unknown keys.
func (p *Props) Err(typ string) error {
	var unknown []string
	for k := range p.m {
		if !p.used[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		p.errs = append(p.errs, fmt.Errorf("%s: unknown key for %s%s", p.key(k), typ, suggest.DidYouMean(k, p.asked)))
	}
	if len(p.errs) == 0 {
		return nil
	}
	return joinErrs(p.errs)
}

type multiErr []error

func (m multiErr) Error() string {
	var b strings.Builder
	for i, e := range m {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func joinErrs(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return multiErr(errs)
}
