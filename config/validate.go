package config

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// FieldError is a value that decoded but is not acceptable.
type FieldError struct {
	Key    string
	Reason string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Reason }

// check collects FieldErrors for one section; sections call its methods in Validate.
type check struct {
	section string
	errs    []error
}

func (ch *check) fail(key, format string, args ...any) {
	ch.errs = append(ch.errs, &FieldError{Key: ch.section + "." + key, Reason: fmt.Sprintf(format, args...)})
}

func (ch *check) addr(key, v string) {
	if v == "" {
		return
	}
	if _, _, err := net.SplitHostPort(v); err != nil {
		ch.fail(key, "want host:port, got %q", v)
	}
}

func (ch *check) positive(key string, v int64) {
	if v <= 0 {
		ch.fail(key, "must be > 0, got %d", v)
	}
}

func (ch *check) oneOf(key, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	ch.fail(key, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
}

// validate runs every section's checks and adds where each bad value came from.
func (c *Config) validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, &FieldError{Key: "data_dir", Reason: "must not be empty"})
	}
	sections := []struct {
		name string
		v    interface{ validate(*check) }
	}{
		{"log", &c.Log}, {"admin", &c.Admin}, {"broker", &c.Broker}, {"kafka", &c.Kafka}, {"ingest", &c.Ingest},
		{"streaming", &c.Streaming}, {"warehouse", &c.Warehouse}, {"jobs", &c.Jobs},
		{"tagging", &c.Tagging}, {"sql", &c.SQL},
	}
	for _, s := range sections {
		ch := &check{section: s.name}
		s.v.validate(ch)
		errs = append(errs, ch.errs...)
	}
	ch := &check{section: "kafka"}
	c.checkBuiltinBroker(ch)
	errs = append(errs, ch.errs...)
	for i, e := range errs {
		var fe *FieldError
		if errors.As(e, &fe) {
			if src, ok := c.sources[fe.Key]; ok && src.Kind != FromDefault {
				errs[i] = fmt.Errorf("%s (from %s)", fe, src)
			}
		}
	}
	return errors.Join(errs...)
}
