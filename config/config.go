// Package config is tagpipe's one configuration schema: a section per room, compiled-in
// defaults (defaults/*.yaml, embedded), an optional tagpipe.yaml on top, TAGPIPE_…
// environment overrides on top of that, and command-line flags last. Every value
// remembers where it came from so `tagpipe config print` can say so.
//
// Each room owns one section file here (broker.go, ingest.go, …) and one defaults file
// (defaults/10_broker.yaml, …); kafka.go (defaults/15_kafka.yaml) is the security of
// every tagpipe Kafka client, checked by internal/kafkasec. The section structs are plain data plus Validate; rooms turn
// them into their own Options in cmd/tagpipe, so no room imports another through config.
package config

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"reflect"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/tagpipe/tagpipe/internal/suggest"
)

//go:embed defaults/*.yaml
var defaultFiles embed.FS

// Config is the whole effective configuration of one tagpipe process.
type Config struct {
	// DataDir holds everything the process writes: broker/, ingest/, spool/, warehouse/, jobs/.
	DataDir   string    `yaml:"data_dir"`
	Log       Log       `yaml:"log"`
	Admin     Admin     `yaml:"admin"`
	Broker    Broker    `yaml:"broker"`
	Kafka     Kafka     `yaml:"kafka"`
	Ingest    Ingest    `yaml:"ingest"`
	Streaming Streaming `yaml:"streaming"`
	Warehouse Warehouse `yaml:"warehouse"`
	Jobs      Jobs      `yaml:"jobs"`
	Tagging   Tagging   `yaml:"tagging"`
	SQL       SQL       `yaml:"sql"`

	// sources maps a dotted key path ("broker.retention_ms") to where its value came from.
	sources map[string]Source
}

// SourceKind says which layer set a value.
type SourceKind string

const (
	FromDefault SourceKind = "default"
	FromFile    SourceKind = "file"
	FromEnv     SourceKind = "env"
	FromFlag    SourceKind = "flag"
)

// Source is where one value came from.
type Source struct {
	Kind SourceKind
	// Where is "tagpipe.yaml:12" for a file, the variable for env, the flag name for flag.
	Where string
}

func (s Source) String() string {
	if s.Where == "" {
		return string(s.Kind)
	}
	return string(s.Kind) + " " + s.Where
}

// EnvPrefix starts every environment override: TAGPIPE_BROKER_RETENTION_MS sets
// broker.retention_ms.
const EnvPrefix = "TAGPIPE_"

// LoadOptions says which layers to apply on top of the embedded defaults.
type LoadOptions struct {
	// File is a tagpipe.yaml path; empty means none (defaults + env only).
	File string
	// Environ is the environment as os.Environ() returns it; nil means os.Environ().
	Environ []string
	// Overrides are flag values by key path ("data_dir"), applied last.
	Overrides map[string]string
}

// Load builds the effective configuration and validates it. Errors name the key path and,
// for file values, the file and line.
func Load(opts LoadOptions) (*Config, error) {
	c := &Config{sources: map[string]Source{}}
	names, err := fs.Glob(defaultFiles, "defaults/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("BUG: cannot list embedded defaults: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		data, err := defaultFiles.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("BUG: cannot read embedded %s: %w", name, err)
		}
		if err := c.apply(data, name, func(string, int) Source { return Source{Kind: FromDefault} }); err != nil {
			return nil, fmt.Errorf("BUG: embedded defaults: %w", err)
		}
	}
	if opts.File != "" {
		data, err := os.ReadFile(opts.File)
		if err != nil {
			return nil, fmt.Errorf("cannot read config file: %w", err)
		}
		file := opts.File
		if err := c.apply(data, file, func(_ string, line int) Source {
			return Source{Kind: FromFile, Where: fmt.Sprintf("%s:%d", file, line)}
		}); err != nil {
			return nil, err
		}
	}
	environ := opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	if err := c.applyEnv(environ); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(opts.Overrides))
	for k := range opts.Overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := c.set(k, opts.Overrides[k], Source{Kind: FromFlag, Where: "--" + strings.ReplaceAll(k, "_", "-")}); err != nil {
			return nil, err
		}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Default is the embedded defaults alone (no file, no environment).
func Default() *Config {
	c, err := Load(LoadOptions{Environ: []string{}})
	if err != nil {
		panic(err)
	}
	return c
}

// SourceOf says where the value at a dotted key path came from.
func (c *Config) SourceOf(key string) Source {
	if s, ok := c.sources[key]; ok {
		return s
	}
	// A map (broker.sasl_users, jobs.pools, an agent's components) is read entry by
	// entry: the first of its entries that has a source speaks for it.
	best := ""
	for k := range c.sources {
		if strings.HasPrefix(k, key+".") && (best == "" || k < best) {
			best = k
		}
	}
	if best != "" {
		return c.sources[best]
	}
	return Source{Kind: FromDefault}
}

// Path joins a path below DataDir, e.g. c.Path("broker").
func (c *Config) Path(elem ...string) string {
	return path.Join(append([]string{c.DataDir}, elem...)...)
}

// apply decodes one YAML document on top of c, strictly, and records the source of every
// leaf it sets.
func (c *Config) apply(data []byte, file string, source func(key string, line int) Source) error {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return fileError(file, err, nil)
	}
	lines := map[int]string{}
	values := map[string]ast.Node{}
	for _, doc := range f.Docs {
		walkLeaves(doc.Body, "", func(key string, line int, value ast.Node) {
			lines[line] = key
			values[key] = value
			c.sources[key] = source(key, line)
		}, func(key string, line int) {
			if _, ok := lines[line]; !ok {
				lines[line] = key // a section's own line: where an unknown one is reported
			}
		})
	}
	if err := yaml.UnmarshalWithOptions(data, c, yaml.DisallowUnknownField()); err != nil {
		var ye yaml.Error
		if !errors.As(err, &ye) || ye.GetToken() == nil {
			// Some decoders (time.Duration) report no position: find the leaf that fails.
			if e := c.locate(file, values); e != nil {
				return e
			}
		}
		return fileError(file, err, lines)
	}
	return nil
}

// locate decodes leaves one by one to find the one the whole-document decode refused.
func (c *Config) locate(file string, values map[string]ast.Node) error {
	for _, f := range c.leaves() {
		n, ok := values[f.key]
		if !ok {
			continue
		}
		ptr := reflect.New(f.value.Type())
		if err := yaml.NodeToValue(n, ptr.Interface()); err != nil {
			pos := n.GetToken().Position
			return &Error{File: file, Line: pos.Line, Column: pos.Column,
				Msg: fmt.Sprintf("%s: bad value %q: want %s", f.key, n.GetToken().Value, typeName(f.value.Type()))}
		}
	}
	return nil
}

// walkLeaves calls fn for every scalar or sequence value in a mapping tree with its dotted
// key path and line, and section (when not nil) for every key whose value is a mapping.
func walkLeaves(n ast.Node, prefix string, fn func(key string, line int, value ast.Node), section func(key string, line int)) {
	switch n := n.(type) {
	case *ast.MappingNode:
		for _, kv := range n.Values {
			walkLeaves(kv, prefix, fn, section)
		}
	case *ast.MappingValueNode:
		key := n.Key.String()
		if prefix != "" {
			key = prefix + "." + key
		}
		switch n.Value.(type) {
		case *ast.MappingNode, *ast.MappingValueNode:
			if section != nil {
				section(key, n.Key.GetToken().Position.Line)
			}
			walkLeaves(n.Value, key, fn, section)
		default:
			fn(key, n.Key.GetToken().Position.Line, n.Value)
		}
	}
}

// fileError turns a YAML decoder error into "file:line:col: key: reason".
func fileError(file string, err error, lines map[int]string) error {
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	pos := ye.GetToken().Position
	msg := ye.GetMessage()
	var unknown *yaml.UnknownFieldError
	if errors.As(err, &unknown) {
		name := ye.GetToken().Value
		msg = fmt.Sprintf("unknown key %q", name) + suggest.DidYouMean(name, sectionKeys(""))
	}
	var typeErr *yaml.TypeError
	if errors.As(err, &typeErr) {
		msg = fmt.Sprintf("bad value %q: want %s", ye.GetToken().Value, typeName(typeErr.DstType))
	}
	if key, ok := lines[pos.Line]; ok {
		if unknown != nil {
			if i := strings.LastIndex(key, "."); i >= 0 {
				msg = fmt.Sprintf("unknown key %q in section %q", key[i+1:], key[:i]) + suggest.DidYouMean(key[i+1:], sectionKeys(key[:i]))
			}
		} else {
			msg = key + ": " + msg
		}
	}
	return &Error{File: file, Line: pos.Line, Column: pos.Column, Msg: msg}
}

// sectionKeys are the keys the section at a dotted path (e.g. "broker", "ingest.agents.a1";
// "" for the top level) takes, in declaration order; a map's keys are any name.
func sectionKeys(path string) []string {
	t := reflect.TypeFor[Config]()
	if path != "" {
	parts:
		for part := range strings.SplitSeq(path, ".") {
			for t.Kind() == reflect.Map || t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
				if t.Kind() == reflect.Map {
					t = t.Elem()
					continue parts // part is the map's key
				}
				t = t.Elem()
			}
			if t.Kind() != reflect.Struct {
				return nil
			}
			found := false
			for sf := range t.Fields() {
				if yamlName(sf) == part {
					t, found = sf.Type, true
					break
				}
			}
			if !found {
				return nil
			}
		}
	}
	for t.Kind() == reflect.Map || t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for sf := range t.Fields() {
		if n := yamlName(sf); n != "" && n != "-" && sf.IsExported() {
			keys = append(keys, n)
		}
	}
	return keys
}

// yamlName is the key a struct field has in tagpipe.yaml.
func yamlName(sf reflect.StructField) string { return strings.Split(sf.Tag.Get("yaml"), ",")[0] }

func typeName(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if t.String() == "time.Duration" {
			return `a duration like "5s"`
		}
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

// Error is a configuration error with its position.
type Error struct {
	File   string
	Line   int
	Column int
	Msg    string
}

func (e *Error) Error() string {
	if e.File == "" {
		return e.Msg
	}
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}
