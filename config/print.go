package config

import (
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
)

// Print writes the effective configuration as YAML, each value followed by a comment that
// says where it came from. The output is itself a valid tagpipe.yaml, passwords masked.
func (c *Config) Print(w io.Writer) error {
	var open []string // the mapping keys printed so far for the current leaf's parents
	for _, f := range c.leaves() {
		parts := strings.Split(f.key, ".")
		parents := parts[:len(parts)-1]
		common := 0
		for common < len(open) && common < len(parents) && open[common] == parents[common] {
			common++
		}
		for i := common; i < len(parents); i++ {
			if _, err := fmt.Fprintf(w, "%s%s:\n", strings.Repeat("  ", i), parents[i]); err != nil {
				return err
			}
		}
		open = parents
		indent := strings.Repeat("  ", len(parents))
		text, err := printValue(f.value.Interface())
		if err != nil {
			return fmt.Errorf("cannot print %s: %w", f.key, err)
		}
		if secret(f) {
			text = strconv.Quote(masked)
		} else if k := f.value.Kind(); k == reflect.Map || k == reflect.Struct {
			if text, err = printValue(maskSecrets(f.value).Interface()); err != nil {
				return fmt.Errorf("cannot print %s: %w", f.key, err)
			}
		}
		line := fmt.Sprintf("%s%s: %s", indent, parts[len(parts)-1], text)
		if _, err := fmt.Fprintf(w, "%-52s # %s\n", line, c.SourceOf(f.key)); err != nil {
			return err
		}
	}
	return nil
}

// masked stands for a password in Print's output: the output is shown and shared, and
// a password belongs in the environment (TAGPIPE_KAFKA_SASL_PASSWORD, …).
const masked = "********"

// secret reports whether f is a password that is set (kafka.sasl_password, sql.password).
func secret(f field) bool {
	return strings.HasSuffix(f.key, "password") && f.value.Kind() == reflect.String && f.value.String() != ""
}

// maskSecrets copies v with the set values of map keys ending in "password" masked
// (an agent's kafka source or sink may carry sasl_password).
func maskSecrets(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Interface:
		if !v.IsNil() {
			return maskSecrets(v.Elem())
		}
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			val := maskSecrets(it.Value())
			if k := it.Key(); k.Kind() == reflect.String && strings.HasSuffix(k.String(), "password") &&
				val.Kind() == reflect.String && val.String() != "" {
				val = reflect.ValueOf(masked)
			}
			out.SetMapIndex(it.Key(), val)
		}
		return out
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i := 0; i < v.NumField(); i++ {
			if out.Field(i).CanSet() {
				out.Field(i).Set(maskSecrets(v.Field(i)))
			}
		}
		return out
	}
	return v
}

// printValue renders one value as YAML on one line. Strings are always double-quoted with
// escapes, so tabs, '#' and leading spaces survive a round trip through the file.
func printValue(v any) (string, error) {
	if s, ok := v.(string); ok {
		return strconv.Quote(s), nil
	}
	val, err := yaml.MarshalWithOptions(v, yaml.Flow(true))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(val)), nil
}
