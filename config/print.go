package config

import (
	"fmt"
	"io"
	"strings"

	"github.com/goccy/go-yaml"
)

// Print writes the effective configuration as YAML, each value followed by a comment that
// says where it came from. The output is itself a valid tagpipe.yaml.
func (c *Config) Print(w io.Writer) error {
	var section string
	for _, f := range c.leaves() {
		parts := strings.Split(f.key, ".")
		indent := ""
		if len(parts) > 1 {
			if parts[0] != section {
				section = parts[0]
				if _, err := fmt.Fprintf(w, "%s:\n", section); err != nil {
					return err
				}
			}
			indent = strings.Repeat("  ", len(parts)-1)
		} else {
			section = ""
		}
		val, err := yaml.MarshalWithOptions(f.value.Interface(), yaml.Flow(true))
		if err != nil {
			return fmt.Errorf("cannot print %s: %w", f.key, err)
		}
		line := fmt.Sprintf("%s%s: %s", indent, parts[len(parts)-1], strings.TrimSpace(string(val)))
		if _, err := fmt.Fprintf(w, "%-52s # %s\n", line, c.SourceOf(f.key)); err != nil {
			return err
		}
	}
	return nil
}
