package broker

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/groups"
	"github.com/tagpipe/tagpipe/broker/storage"
	"github.com/tagpipe/tagpipe/internal/fsutil"
)

// topic is one topic: its partitions and its config overrides (only the keys set with
// CreateTopics/AlterConfigs; everything else falls back to the broker's defaults).
type topic struct {
	name    string
	id      [16]byte
	parts   []*partition
	configs map[string]string
}

// partition is one partition's log. appendMu serializes Append (storage requires one
// appender at a time); Read and offsets are safe without it.
type partition struct {
	topic    string
	index    int32
	log      *storage.Log
	appendMu sync.Mutex
	// unsynced: the partition was made by a change whose topics.json is in place but
	// not known durable (fsutil.ErrNotSynced). A power cut may bring back a file without
	// it, and the next start would delete its directory, so appends first save
	// topics.json again (syncTopics) and take nothing until a save is synced.
	unsynced atomic.Bool
}

// topicsFile is Dir/topics.json: the topic list, ids and config overrides. It is
// rewritten atomically (temp file, fsync, rename, fsync dir) on every change.
type topicsFile struct {
	Version int             `json:"version"`
	Topics  []topicFileItem `json:"topics"`
}

type topicFileItem struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

var legalTopic = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// validateTopicName applies Kafka's rules: 1–249 chars of [a-zA-Z0-9._-], not "." or "..".
func validateTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("topic name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed", name)
	case len(name) > 249:
		return fmt.Errorf("topic name is %d characters long, at most 249 allowed", len(name))
	case !legalTopic.MatchString(name):
		return fmt.Errorf("topic name %q has characters outside [a-zA-Z0-9._-]", name)
	}
	return nil
}

func (b *Broker) partitionDir(topic string, p int32) string {
	return filepath.Join(b.opts.Dir, topic+"-"+strconv.Itoa(int(p)))
}

func (b *Broker) loadClusterID() error {
	if b.opts.ClusterID != "" {
		b.clusterID = b.opts.ClusterID
		return nil
	}
	path := filepath.Join(b.opts.Dir, "cluster_id")
	data, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(data))) > 0 {
		b.clusterID = strings.TrimSpace(string(data))
		return nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot read cluster id %q: %w", path, err)
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	b.clusterID = "tagpipe-" + hex.EncodeToString(id[:8])
	if err := fsutil.WriteFile(path, []byte(b.clusterID+"\n")); err != nil {
		return fmt.Errorf("cannot write cluster id: %w", err)
	}
	return nil
}

// loadTopics reads topics.json and opens (recovers) every partition log.
func (b *Broker) loadTopics() error {
	path := filepath.Join(b.opts.Dir, "topics.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read %q: %w", path, err)
	}
	var tf topicsFile
	if err := json.Unmarshal(data, &tf); err != nil {
		return fmt.Errorf("cannot parse %q: %w", path, err)
	}
	known := map[string]bool{}
	for _, it := range tf.Topics {
		t := &topic{name: it.Name, configs: it.Configs}
		if t.configs == nil {
			t.configs = map[string]string{}
		}
		idb, err := hex.DecodeString(it.ID)
		if err != nil || len(idb) != 16 {
			return fmt.Errorf("cannot parse %q: topic %q has a bad id %q", path, it.Name, it.ID)
		}
		copy(t.id[:], idb)
		so := b.storageOptions(t.configs)
		for p := int32(0); p < it.Partitions; p++ {
			dir := b.partitionDir(t.name, p)
			known[filepath.Base(dir)] = true
			l, err := storage.OpenLog(dir, so)
			if err != nil {
				b.topics[t.name] = t // so closeLogs closes what was opened
				return fmt.Errorf("cannot open partition %s-%d: %w", t.name, p, err)
			}
			t.parts = append(t.parts, &partition{topic: t.name, index: p, log: l})
		}
		b.topics[t.name] = t
		b.metrics.partitions.Add(float64(len(t.parts)))
	}
	// A crash between rewriting topics.json and removing a deleted topic's directories
	// leaves them behind; they belong to no topic, so finish the delete.
	entries, _ := os.ReadDir(b.opts.Dir)
	for _, e := range entries {
		if !e.IsDir() || known[e.Name()] {
			continue
		}
		if i := strings.LastIndexByte(e.Name(), '-'); i > 0 {
			if _, err := strconv.Atoi(e.Name()[i+1:]); err == nil {
				b.log.Warn("removing partition directory of a deleted topic", "dir", e.Name())
				_ = os.RemoveAll(filepath.Join(b.opts.Dir, e.Name()))
			}
		}
	}
	return nil
}

// saveTopicsLocked rewrites topics.json; b.mu must be held for writing. A save that is
// synced makes every partition it lists durable; one that fails with fsutil.ErrNotSynced
// has put the file in place all the same: callers keep their change then (it is what the
// next start loads) and mark the partitions they made with markUnsynced.
func (b *Broker) saveTopicsLocked() error {
	tf := topicsFile{Version: 1}
	for _, t := range b.topics {
		tf.Topics = append(tf.Topics, topicFileItem{Name: t.name, ID: hex.EncodeToString(t.id[:]), Partitions: int32(len(t.parts)), Configs: t.configs})
	}
	sort.Slice(tf.Topics, func(i, j int) bool { return tf.Topics[i].Name < tf.Topics[j].Name })
	data, err := json.MarshalIndent(tf, "", "  ")
	if err != nil {
		return fmt.Errorf("BUG: cannot encode topics: %w", err)
	}
	if err := writeFile(filepath.Join(b.opts.Dir, "topics.json"), append(data, '\n')); err != nil {
		return err
	}
	if b.topicsUnsynced {
		for _, t := range b.topics {
			for _, p := range t.parts {
				p.unsynced.Store(false)
			}
		}
		b.topicsUnsynced = false
	}
	return nil
}

// markUnsynced marks partitions made by a change whose topics.json save returned
// fsutil.ErrNotSynced; b.mu must be held for writing.
func (b *Broker) markUnsynced(parts []*partition) {
	for _, p := range parts {
		p.unsynced.Store(true)
	}
	b.topicsUnsynced = true
}

// syncTopics saves topics.json again for an append to an unsynced partition: once a
// save is synced, the partition is durable and may take records.
func (b *Broker) syncTopics(p *partition) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !p.unsynced.Load() {
		return nil // another append's save got there first
	}
	if err := b.saveTopicsLocked(); err != nil {
		return fmt.Errorf("partition %s-%d is listed in topics.json, but it could not be synced: %w", p.topic, p.index, err)
	}
	return nil
}

// notSynced is the answer to a topic change that is in place (in the broker and in
// topics.json, as the next start will see it) but whose topics.json could not be synced.
func notSynced(what string, err error) *topicError {
	return terr(kerr.KafkaStorageError, "%s, but topics.json could not be synced, so a power cut may undo it: %v", what, err)
}

// writeTopicsFile, when set, replaces fsutil.WriteFile for topics.json: tests make its
// directory fsync fail. Atomic: a test swaps it while connections run.
var writeTopicsFile atomic.Pointer[func(path string, data []byte) error]

// writeFile writes topics.json.
func writeFile(path string, data []byte) error {
	if f := writeTopicsFile.Load(); f != nil {
		return (*f)(path, data)
	}
	return fsutil.WriteFile(path, data)
}

// topicError is a protocol error with a message, for responses that carry both.
type topicError struct {
	err *kerr.Error
	msg string
}

func (e *topicError) Error() string { return e.err.Message + ": " + e.msg }

func terr(e *kerr.Error, format string, args ...any) *topicError {
	return &topicError{err: e, msg: fmt.Sprintf(format, args...)}
}

// set writes e into a response entry's error code and message fields.
func (e *topicError) set(code *int16, msg **string) {
	*code = e.err.Code
	m := e.msg
	*msg = &m
}

// alterTopicConfigs is one resource of AlterConfigs or IncrementalAlterConfigs: only an
// existing topic's configs can change; build computes the new overrides from a copy of
// the current ones (or fails the resource, changing nothing); validateOnly stops there.
func (b *Broker) alterTopicConfigs(typ kmsg.ConfigResourceType, name string, validateOnly bool,
	build func(current map[string]string) (map[string]string, *topicError)) *topicError {
	if typ != kmsg.ConfigResourceTypeTopic {
		return terr(kerr.InvalidRequest, "only topic configs can be altered; broker settings come from tagpipe.yaml")
	}
	// As Kafka's ControllerConfigurationValidator: no default-topic resource, then the
	// name's legality, before looking the topic up.
	if name == "" {
		return terr(kerr.InvalidRequest, "Default topic resources are not allowed.")
	}
	if err := validateTopicName(name); err != nil {
		return terr(kerr.InvalidTopicException, "%v", err)
	}
	t := b.topic(name)
	if t == nil {
		return terr(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
	}
	configs, te := build(b.snapshot(t).configs)
	if te != nil || validateOnly {
		return te
	}
	return b.setTopicConfigs(name, configs)
}

// createTopic creates a topic with n partitions (≤0: the default) and config overrides.
// validateOnly checks everything and creates nothing.
func (b *Broker) createTopic(name string, n int32, replication int16, configs map[string]string, validateOnly bool) (*topic, *topicError) {
	// Requests are decoded without copying: strings kept beyond the request are cloned.
	name = strings.Clone(name)
	configs = cloneConfigs(configs)
	if err := validateTopicName(name); err != nil {
		return nil, terr(kerr.InvalidTopicException, "%v", err)
	}
	if n == -1 {
		n = b.opts.DefaultPartitions
	}
	if n <= 0 {
		return nil, terr(kerr.InvalidPartitions, "number of partitions must be larger than 0, got %d", n)
	}
	if n > b.opts.MaxPartitions {
		return nil, terr(kerr.InvalidPartitions, "at most %d partitions, got %d", b.opts.MaxPartitions, n)
	}
	if replication != -1 && replication != 1 {
		return nil, terr(kerr.InvalidReplicationFactor, "this is a single broker: replication factor must be 1, got %d", replication)
	}
	for k, v := range configs {
		if err := validateConfig(k, &v); err != nil {
			return nil, terr(kerr.InvalidConfig, "%v", err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// A deletion of this name may still be removing its directories, which the new
	// partitions are about to use: wait until they are gone.
	for done := b.deleting[name]; done != nil; done = b.deleting[name] {
		b.mu.Unlock()
		<-done
		b.mu.Lock()
	}
	if _, ok := b.topics[name]; ok {
		return nil, terr(kerr.TopicAlreadyExists, "topic %q already exists", name)
	}
	// Kafka refuses names that collide once '.' and '_' are treated alike (metric names).
	norm := strings.ReplaceAll(name, ".", "_")
	for other := range b.topics {
		if strings.ReplaceAll(other, ".", "_") == norm {
			return nil, terr(kerr.InvalidTopicException, "topic %q collides with existing topic %q", name, other)
		}
	}
	t := &topic{name: name, configs: map[string]string{}}
	for k, v := range configs {
		t.configs[k] = v
	}
	_, _ = rand.Read(t.id[:])
	if validateOnly {
		t.parts = make([]*partition, n)
		return t, nil
	}
	so := b.storageOptions(t.configs)
	for p := int32(0); p < n; p++ {
		l, err := storage.OpenLog(b.partitionDir(name, p), so)
		if err != nil {
			for _, pp := range t.parts {
				_ = pp.log.Delete()
			}
			b.log.Error("cannot create topic", "topic", name, "partition", p, "err", err)
			return nil, terr(kerr.KafkaStorageError, "cannot create partition %d: %v", p, err)
		}
		t.parts = append(t.parts, &partition{topic: name, index: p, log: l})
	}
	b.topics[name] = t
	if err := b.saveTopicsLocked(); err != nil {
		if errors.Is(err, fsutil.ErrNotSynced) {
			// topics.json lists the topic: it stays, as the next start will load it, and
			// its partitions take records once a save is synced.
			b.markUnsynced(t.parts)
			b.metrics.partitions.Add(float64(n))
			b.log.Error("topic created, but topics.json could not be synced", "topic", name, "err", err)
			return nil, notSynced(fmt.Sprintf("topic %q was created", name), err)
		}
		delete(b.topics, name)
		for _, pp := range t.parts {
			_ = pp.log.Delete()
		}
		b.log.Error("cannot create topic", "topic", name, "err", err)
		return nil, terr(kerr.KafkaStorageError, "%v", err)
	}
	b.metrics.partitions.Add(float64(n))
	b.log.Info("topic created", "topic", name, "partitions", n, "configs", configs)
	return t, nil
}

// autoCreate returns the topic, creating it with the default partition count when it does
// not exist and auto-creation is on. A nil topic with nil error means "unknown topic".
func (b *Broker) autoCreate(name string) (*topic, *topicError) {
	if t := b.topic(name); t != nil {
		return t, nil
	}
	if !b.opts.AutoCreateTopics {
		return nil, nil
	}
	t, err := b.createTopic(name, b.opts.DefaultPartitions, -1, nil, false)
	if err != nil && err.err == kerr.TopicAlreadyExists { // lost a race with another creator
		return b.topic(name), nil
	}
	return t, err
}

func (b *Broker) topic(name string) *topic {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.topics[name]
}

func (b *Broker) topicByID(id [16]byte) *topic {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, t := range b.topics {
		if t.id == id {
			return t
		}
	}
	return nil
}

// partition returns a partition or nil.
func (b *Broker) partition(name string, p int32) *partition {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t := b.topics[name]
	if t == nil || p < 0 || int(p) >= len(t.parts) {
		return nil
	}
	return t.parts[p]
}

// topicSnapshot is a consistent copy of a topic for responses.
type topicSnapshot struct {
	name    string
	id      [16]byte
	parts   []*partition
	configs map[string]string
}

func (b *Broker) snapshot(t *topic) topicSnapshot {
	b.mu.RLock()
	defer b.mu.RUnlock()
	cfg := make(map[string]string, len(t.configs))
	for k, v := range t.configs {
		cfg[k] = v
	}
	return topicSnapshot{name: t.name, id: t.id, parts: append([]*partition(nil), t.parts...), configs: cfg}
}

// groupTopics lists the topics for consumer groups' assignments (groups.Options.Topics);
// the coordinator calls it holding its lock, which comes before Broker.mu (locks.md).
func (b *Broker) groupTopics() []groups.TopicMeta {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]groups.TopicMeta, 0, len(b.topics))
	for _, t := range b.topics {
		out = append(out, groups.TopicMeta{Name: t.name, ID: t.id, Partitions: int32(len(t.parts))})
	}
	return out
}

// groupOpts are the group coordinator's options in effect (its defaults applied).
func (b *Broker) groupOpts() groups.Options { return b.groups.Options() }

func (b *Broker) topicNames() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	names := make([]string, 0, len(b.topics))
	for n := range b.topics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (b *Broker) allPartitions() []*partition {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []*partition
	for _, t := range b.topics {
		out = append(out, t.parts...)
	}
	return out
}

// deleteTopic removes a topic: first from topics.json (so a crash cannot resurrect it),
// then its partition directories.
func (b *Broker) deleteTopic(name string) *topicError {
	b.mu.Lock()
	t, ok := b.topics[name]
	if !ok {
		b.mu.Unlock()
		return terr(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
	}
	delete(b.topics, name)
	var te *topicError
	if err := b.saveTopicsLocked(); err != nil {
		if !errors.Is(err, fsutil.ErrNotSynced) {
			b.topics[name] = t
			b.mu.Unlock()
			return terr(kerr.KafkaStorageError, "%v", err)
		}
		// topics.json no longer lists the topic: kept, it would take records that the
		// next start deletes with its directories (as a deleted topic's). The client
		// hears that a power cut may bring the topic back (empty: its directories go).
		b.log.Error("topic deleted, but topics.json could not be synced", "topic", name, "err", err)
		te = notSynced(fmt.Sprintf("topic %q was deleted", name), err)
	}
	// Until the directories are gone, a new topic of this name waits (createTopic).
	done := make(chan struct{})
	if b.deleting == nil {
		b.deleting = map[string]chan struct{}{}
	}
	b.deleting[name] = done
	b.mu.Unlock()
	for _, p := range t.parts {
		p.appendMu.Lock()
		if err := p.log.Delete(); err != nil {
			b.log.Warn("cannot delete partition directory", "topic", name, "partition", p.index, "err", err)
		}
		p.appendMu.Unlock()
	}
	b.mu.Lock()
	delete(b.deleting, name)
	b.mu.Unlock()
	close(done)
	b.metrics.partitions.Sub(float64(len(t.parts)))
	b.log.Info("topic deleted", "topic", name)
	return te
}

// addPartitions grows a topic to n partitions. assigned is the number of manual replica
// assignments in the request (-1: none); as in Kafka it must be one per new partition.
func (b *Broker) addPartitions(name string, n int32, assigned int, validateOnly bool) *topicError {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.topics[name]
	if !ok {
		return terr(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
	}
	have := int32(len(t.parts))
	if n <= have {
		return terr(kerr.InvalidPartitions, "topic %q has %d partitions; the new count must be larger, got %d", name, have, n)
	}
	if n > b.opts.MaxPartitions {
		return terr(kerr.InvalidPartitions, "at most %d partitions, got %d", b.opts.MaxPartitions, n)
	}
	if assigned >= 0 && int32(assigned) != n-have {
		return terr(kerr.InvalidReplicaAssignment, "attempted to add %d additional partition(s), but %d assignment(s) were specified", n-have, assigned)
	}
	if validateOnly {
		return nil
	}
	so := b.storageOptions(t.configs)
	var added []*partition
	for p := have; p < n; p++ {
		l, err := storage.OpenLog(b.partitionDir(name, p), so)
		if err != nil {
			for _, pp := range added {
				_ = pp.log.Delete()
			}
			return terr(kerr.KafkaStorageError, "cannot create partition %d: %v", p, err)
		}
		added = append(added, &partition{topic: t.name, index: p, log: l})
	}
	old := t.parts
	t.parts = append(append([]*partition(nil), old...), added...)
	if err := b.saveTopicsLocked(); err != nil {
		if errors.Is(err, fsutil.ErrNotSynced) {
			// topics.json lists the new partitions: they stay (see createTopic).
			b.markUnsynced(added)
			b.metrics.partitions.Add(float64(len(added)))
			b.log.Error("partitions added, but topics.json could not be synced", "topic", name, "partitions", n, "err", err)
			return notSynced(fmt.Sprintf("topic %q has %d partitions now", name, n), err)
		}
		t.parts = old
		for _, pp := range added {
			_ = pp.log.Delete()
		}
		return terr(kerr.KafkaStorageError, "%v", err)
	}
	b.metrics.partitions.Add(float64(len(added)))
	b.log.Info("partitions added", "topic", name, "partitions", n)
	return nil
}

// setTopicConfigs replaces a topic's overrides (already validated) and applies them to
// its open logs.
func (b *Broker) setTopicConfigs(name string, configs map[string]string) *topicError {
	configs = cloneConfigs(configs)
	b.mu.Lock()
	t, ok := b.topics[name]
	if !ok {
		b.mu.Unlock()
		return terr(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
	}
	old := t.configs
	t.configs = configs
	var te *topicError
	if err := b.saveTopicsLocked(); err != nil {
		if !errors.Is(err, fsutil.ErrNotSynced) {
			t.configs = old
			b.mu.Unlock()
			return terr(kerr.KafkaStorageError, "%v", err)
		}
		// topics.json holds the new configs, so the logs take them as the next start
		// would; the client hears that a power cut may undo them.
		b.log.Error("topic configs changed, but topics.json could not be synced", "topic", name, "err", err)
		te = notSynced(fmt.Sprintf("the configs of topic %q were changed", name), err)
	}
	so := b.storageOptions(configs)
	parts := append([]*partition(nil), t.parts...)
	b.mu.Unlock()
	for _, p := range parts {
		p.appendMu.Lock()
		p.log.SetOptions(so)
		p.appendMu.Unlock()
	}
	b.log.Info("topic configs changed", "topic", name, "configs", configs)
	return te
}

// cloneConfigs copies a config map with its strings, which may alias a request frame.
func cloneConfigs(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.Clone(k)] = strings.Clone(v)
	}
	return out
}
