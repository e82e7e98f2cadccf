package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/tagpipe/tagpipe/internal/suggest"
)

// field is one settable leaf of Config: a key path and the value it addresses.
type field struct {
	key   string
	value reflect.Value
}

// leaves lists every leaf field (anything that is not a nested section struct) of c in
// declaration order. Maps and lists are leaves: they are set whole.
func (c *Config) leaves() []field {
	var out []field
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name := strings.Split(sf.Tag.Get("yaml"), ",")[0]
			if name == "" || name == "-" {
				continue
			}
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			fv := v.Field(i)
			if fv.Kind() == reflect.Struct && !isScalarStruct(fv.Type()) {
				walk(fv, key)
				continue
			}
			out = append(out, field{key: key, value: fv})
		}
	}
	walk(reflect.ValueOf(c).Elem(), "")
	return out
}

func isScalarStruct(t reflect.Type) bool { return t.String() == "time.Time" }

// Keys lists every leaf key path, in declaration order.
func (c *Config) Keys() []string {
	var keys []string
	for _, f := range c.leaves() {
		keys = append(keys, f.key)
	}
	return keys
}

// envName is the environment variable that overrides key: broker.retention_ms →
// TAGPIPE_BROKER_RETENTION_MS.
func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func (c *Config) applyEnv(environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}
	known := map[string]bool{}
	for _, f := range c.leaves() {
		name := envName(f.key)
		known[name] = true
		v, ok := env[name]
		if !ok {
			continue
		}
		if err := setValue(f, v); err != nil {
			return &Error{File: "environment", Msg: fmt.Sprintf("%s (%s): %v", name, f.key, err)}
		}
		c.sources[f.key] = Source{Kind: FromEnv, Where: name}
	}
	var unknown []string
	for name := range env {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		names := make([]string, 0, len(known))
		for _, f := range c.leaves() {
			names = append(names, envName(f.key))
		}
		for i, u := range unknown {
			unknown[i] += suggest.DidYouMean(u, names)
		}
		return &Error{File: "environment", Msg: fmt.Sprintf("unknown variable %s: no such config key", strings.Join(unknown, ", "))}
	}
	return nil
}

// set assigns one value, given as text, to the leaf at key.
func (c *Config) set(key, text string, src Source) error {
	for _, f := range c.leaves() {
		if f.key == key {
			if err := setValue(f, text); err != nil {
				return &Error{File: src.String(), Msg: fmt.Sprintf("%s: %v", key, err)}
			}
			c.sources[key] = src
			return nil
		}
	}
	return fmt.Errorf("BUG: no config key %q", key)
}

// setValue parses text as YAML into the field, so env values use the same syntax as the
// file ("5s", "[a, b]", "true").
func setValue(f field, text string) error {
	ptr := reflect.New(f.value.Type())
	if f.value.Kind() == reflect.String {
		ptr.Elem().SetString(text)
	} else if err := yaml.Unmarshal([]byte(text), ptr.Interface()); err != nil {
		return fmt.Errorf("bad value %q: want %s", text, typeName(f.value.Type()))
	}
	f.value.Set(ptr.Elem())
	return nil
}
