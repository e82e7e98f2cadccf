package acl

// The store: every ACL, kept in Options.Path (acls.json, broker/FORMAT.md), rewritten
// atomically before a change is answered and read by Authorize through one atomic
// pointer, so connections use a change at once and never take a lock.

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/internal/fsutil"
)

// FileName is the store's file name in the broker's directory.
const FileName = "acls.json"

// fileVersion is the version field of acls.json.
const fileVersion = 1

// Options configure an Authorizer.
type Options struct {
	// Path is the ACL file (Dir/acls.json); a missing file is no ACLs.
	Path string
	// SuperUsers are principals ("User:admin") allowed every operation whatever the ACLs
	// say (Kafka's super.users).
	SuperUsers []string
	// AllowEveryoneIfNoACLFound allows an operation on a resource no ACL names (Kafka's
	// allow.everyone.if.no.acl.found, false by default).
	AllowEveryoneIfNoACLFound bool
	// WriteFile replaces the file atomically; nil = fsutil.WriteFile (tests inject failures).
	WriteFile func(path string, data []byte) error
}

// Authorizer holds the ACLs and decides what a principal may do.
type Authorizer struct {
	opts  Options
	super map[string]bool
	// mu serializes changes (and the file writes); readers use cur only.
	mu  sync.Mutex
	cur atomic.Pointer[index]
}

// InvalidError is a creation Kafka refuses with INVALID_REQUEST; its text is Kafka's.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// Open loads opts.Path and returns the authorizer.
func Open(opts Options) (*Authorizer, error) {
	a := &Authorizer{opts: opts, super: map[string]bool{}}
	for _, u := range opts.SuperUsers {
		a.super[u] = true
	}
	var acls []Binding
	data, err := os.ReadFile(opts.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("cannot read ACLs: %w", err)
	default:
		if acls, err = parseFile(data); err != nil {
			return nil, fmt.Errorf("ACL file %q: %w", opts.Path, err)
		}
	}
	a.cur.Store(newIndex(acls))
	return a, nil
}

// Len is how many ACLs are stored.
func (a *Authorizer) Len() int { return len(a.cur.Load().all) }

// Create adds bindings and answers each: nil (also for an ACL that exists already), an
// *InvalidError, or the error writing the file (nothing was added then).
func (a *Authorizer) Create(bindings []Binding) []error {
	errs := make([]error, len(bindings))
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.cur.Load()
	next := slices.Clone(old.all)
	added := false
	for i, b := range bindings {
		if err := b.Validate(); err != nil {
			errs[i] = err
			continue
		}
		if slices.Contains(next, b) {
			continue
		}
		next = append(next, b)
		added = true
	}
	if !added {
		return errs
	}
	if err := a.write(next); err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	return errs
}

// Delete removes the ACLs each filter matches and returns, per filter, the ACLs it
// matched (an ACL two filters match is listed for both). On an error writing the file
// nothing was removed.
func (a *Authorizer) Delete(filters []Filter) ([][]Binding, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.cur.Load()
	out := make([][]Binding, len(filters))
	gone := make([]bool, len(old.all))
	removed := false
	for i, f := range filters {
		for j, b := range old.all {
			if f.Matches(b) {
				out[i] = append(out[i], b)
				gone[j], removed = true, true
			}
		}
	}
	if !removed {
		return out, nil
	}
	next := make([]Binding, 0, len(old.all))
	for j, b := range old.all {
		if !gone[j] {
			next = append(next, b)
		}
	}
	if err := a.write(next); err != nil {
		return nil, err
	}
	return out, nil
}

// Describe returns the ACLs f matches, sorted by resource (type, name, pattern type).
func (a *Authorizer) Describe(f Filter) []Binding {
	var out []Binding
	for _, b := range a.cur.Load().all {
		if f.Matches(b) {
			out = append(out, b)
		}
	}
	slices.SortStableFunc(out, func(x, y Binding) int {
		return cmp.Or(cmp.Compare(x.ResourceType, y.ResourceType), cmp.Compare(x.ResourceName, y.ResourceName),
			cmp.Compare(x.PatternType, y.PatternType))
	})
	return out
}

// write replaces the file with acls and, once it is in place, makes them the ACLs in
// effect. fsutil.ErrNotSynced (the file was replaced, its directory not synced) still
// puts them in effect. a.mu must be held.
func (a *Authorizer) write(acls []Binding) error {
	write := fsutil.WriteFile
	if a.opts.WriteFile != nil {
		write = a.opts.WriteFile
	}
	err := write(a.opts.Path, marshalFile(acls))
	if err == nil || errors.Is(err, fsutil.ErrNotSynced) {
		a.cur.Store(newIndex(acls))
	}
	if err != nil {
		return fmt.Errorf("cannot write ACLs: %w", err)
	}
	return nil
}

type fileJSON struct {
	Version int         `json:"version"`
	ACLs    []entryJSON `json:"acls"`
}

type entryJSON struct {
	ResourceType string `json:"resource_type"`
	PatternType  string `json:"pattern_type"`
	ResourceName string `json:"resource_name"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission"`
}

func marshalFile(acls []Binding) []byte {
	f := fileJSON{Version: fileVersion, ACLs: make([]entryJSON, 0, len(acls))}
	for _, b := range acls {
		f.ACLs = append(f.ACLs, entryJSON{ResourceType: b.ResourceType.String(), PatternType: b.PatternType.String(),
			ResourceName: b.ResourceName, Principal: b.Principal, Host: b.Host,
			Operation: b.Operation.String(), Permission: b.Permission.String()})
	}
	data, _ := json.MarshalIndent(f, "", " ")
	return append(data, '\n')
}

func parseFile(data []byte) ([]Binding, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("version %d, want %d", f.Version, fileVersion)
	}
	out := make([]Binding, 0, len(f.ACLs))
	for i, e := range f.ACLs {
		var b Binding
		var err error
		if b.ResourceType, err = kmsg.ParseACLResourceType(e.ResourceType); err == nil {
			if b.PatternType, err = kmsg.ParseACLResourcePatternType(e.PatternType); err == nil {
				if b.Operation, err = kmsg.ParseACLOperation(e.Operation); err == nil {
					b.Permission, err = kmsg.ParseACLPermissionType(e.Permission)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("acl %d: %w", i, err)
		}
		b.ResourceName, b.Principal, b.Host = e.ResourceName, e.Principal, e.Host
		if err := b.Validate(); err != nil {
			return nil, fmt.Errorf("acl %d %s: %w", i, b, err)
		}
		if slices.Contains(out, b) {
			return nil, fmt.Errorf("acl %d %s listed twice", i, b)
		}
		out = append(out, b)
	}
	return out, nil
}
