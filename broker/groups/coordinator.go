package groups

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/internal/fsutil"
)

// Options configure a Coordinator.
type Options struct {
	// Dir holds offsets.log.
	Dir string
	// Sync fsyncs offsets.log after every commit (the broker's flush: always).
	Sync bool
	// MinSessionTimeout / MaxSessionTimeout bound a member's session timeout
	// (group.min/max.session.timeout.ms); outside: INVALID_SESSION_TIMEOUT.
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// InitialRebalanceDelay lets more members join a new group before its first
	// generation (group.initial.rebalance.delay.ms).
	InitialRebalanceDelay time.Duration
	// OffsetsRetention drops the committed offsets of a group that has been empty this
	// long (offsets.retention.minutes).
	OffsetsRetention time.Duration
	// Tick is how often sessions and rebalance deadlines are checked.
	Tick time.Duration
	// Now is the clock; nil = time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Mirror, when set, takes the __consumer_offsets records (offsets_topic.go) of each
	// change once offsets.log holds it: commits, deleted or expired offsets and groups,
	// and group metadata when a rebalance completes or a group becomes Empty. It is
	// called with the coordinator's lock held, so records reach it in the order of the
	// changes; its error is logged (offsets.log stays the truth).
	Mirror func(group string, recs []TopicRecord) error
	// ConsumerSessionTimeout fences a consumer-group member (KIP-848) that has not
	// heartbeaten for this long (group.consumer.session.timeout.ms).
	ConsumerSessionTimeout time.Duration
	// ConsumerHeartbeatInterval is the interval consumer-group members are told to
	// heartbeat at (group.consumer.heartbeat.interval.ms).
	ConsumerHeartbeatInterval time.Duration
	// Topics lists the broker's topics, which consumer groups' assignments are made
	// of; nil = none. It is called with the coordinator's lock held.
	Topics func() []TopicMeta
}

// DefaultOptions are Kafka's defaults.
func DefaultOptions() Options {
	return Options{
		MinSessionTimeout:     6 * time.Second,
		MaxSessionTimeout:     30 * time.Minute,
		InitialRebalanceDelay: 3 * time.Second,
		OffsetsRetention:      7 * 24 * time.Hour,
		Tick:                  100 * time.Millisecond,

		ConsumerSessionTimeout:    45 * time.Second,
		ConsumerHeartbeatInterval: 5 * time.Second,
	}
}

type state int

const (
	stateEmpty state = iota
	statePreparing
	stateCompleting
	stateStable
)

func (s state) String() string {
	return [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable"}[s]
}

type member struct {
	id, instanceID, clientID, clientHost string
	protocolType                         string
	protocols                            []kmsg.JoinGroupRequestProtocol
	session, rebalance                   time.Duration
	lastSeen                             time.Time
	assignment                           []byte
	joined                               bool // rejoined during the current PreparingRebalance
	joinCh                               chan *kmsg.JoinGroupResponse
	syncCh                               chan *kmsg.SyncGroupResponse
}

type group struct {
	name         string
	state        state
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	pending      map[string]time.Time // member ids handed out with MEMBER_ID_REQUIRED
	deadline     time.Time            // end of the current join phase
	emptySince   time.Time
	// holdUntil keeps a new group's first join phase open even when everyone known has
	// joined, so members starting together land in one generation.
	holdUntil time.Time
	// cons is set for a consumer group (KIP-848, consumer.go): its members are there,
	// members (classic) stays empty and state stays Empty.
	cons *consumerGroup
}

// hasMembers reports whether a group of either type has members.
func (g *group) hasMembers() bool {
	return len(g.members) > 0 || g.cons != nil && len(g.cons.members) > 0
}

// Committed is one committed offset.
type Committed struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitMs    int64
}

// Coordinator runs every consumer group of the broker.
type Coordinator struct {
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	mu     sync.Mutex
	groups map[string]*group
	// offsets: group → topic → partition.
	offsets map[string]map[string]map[int32]Committed
	file    *os.File
	// appended counts lines written since offsets.log was last compacted; live is how
	// many lines the compacted log had. Commits append, so the log is compacted again
	// once it is mostly superseded lines (persistLocked).
	appended, live int
	size           int64 // of offsets.log: a failed append is cut back to it
	// dirUnsynced: a compaction renamed its copy over offsets.log but could not fsync the
	// directory, so a power cut may bring the old file back and lose the commits
	// appended since. With Options.Sync a commit is acknowledged only after the fsync
	// succeeded again.
	dirUnsynced bool
	stop        chan struct{}
	// kick wakes an idle reaper when a member joins or a member id is handed out.
	kick chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// commitRecord is one line of offsets.log.
type commitRecord struct {
	Group     string `json:"g"`
	Topic     string `json:"t,omitempty"`
	Partition int32  `json:"p,omitempty"`
	Offset    int64  `json:"o,omitempty"`
	Epoch     int32  `json:"e,omitempty"`
	Metadata  string `json:"m,omitempty"`
	CommitMs  int64  `json:"ts,omitempty"`
	// Delete removes the group's offsets (DeleteGroups, retention); with Topic set, only
	// that partition's (OffsetDelete).
	Delete bool `json:"del,omitempty"`
}

// New opens (replays and compacts) offsets.log and starts the reaper.
func New(opts Options) (*Coordinator, error) {
	def := DefaultOptions()
	if opts.MinSessionTimeout <= 0 {
		opts.MinSessionTimeout = def.MinSessionTimeout
	}
	if opts.MaxSessionTimeout <= 0 {
		opts.MaxSessionTimeout = def.MaxSessionTimeout
	}
	if opts.InitialRebalanceDelay < 0 {
		opts.InitialRebalanceDelay = 0
	}
	if opts.OffsetsRetention <= 0 {
		opts.OffsetsRetention = def.OffsetsRetention
	}
	if opts.Tick <= 0 {
		opts.Tick = def.Tick
	}
	if opts.ConsumerSessionTimeout <= 0 {
		opts.ConsumerSessionTimeout = def.ConsumerSessionTimeout
	}
	if opts.ConsumerHeartbeatInterval <= 0 {
		opts.ConsumerHeartbeatInterval = def.ConsumerHeartbeatInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	c := &Coordinator{opts: opts, log: opts.Logger.With("component", "groups"), now: now,
		groups: map[string]*group{}, offsets: map[string]map[string]map[int32]Committed{}, stop: make(chan struct{}),
		kick: make(chan struct{}, 1)}
	if err := c.load(); err != nil {
		return nil, err
	}
	// A group known only from offsets.log is Empty from now on (its members, if any, were
	// this process's predecessor's): its offsets expire OffsetsRetention after this
	// start, as an Empty group's, instead of never (the reaper only sees live groups).
	// Kafka keeps when the group became Empty in its metadata record; this log has no
	// such time, so the start stands for it (never earlier than Kafka would expire them)
	// until Reconcile finds the group's record in __consumer_offsets (restoreLocked).
	for name := range c.offsets {
		if c.groups[name] == nil {
			c.groups[name] = &group{name: name, members: map[string]*member{}, pending: map[string]time.Time{}, emptySince: now()}
		}
	}
	c.wg.Add(1)
	go c.reaper()
	return c, nil
}

func (c *Coordinator) load() error {
	// offsets.log's fsyncs, and the compaction's of Dir, cover the entries in Dir, not
	// Dir's own name: a Dir made here is synced in its parent.
	if err := fsutil.MkdirAllSync(c.opts.Dir, func(d string) error { return fsutil.SyncDirSync(d, syncFile) }); err != nil {
		return fmt.Errorf("cannot create %q: %w", c.opts.Dir, err)
	}
	path := filepath.Join(c.opts.Dir, "offsets.log")
	good, size, err := c.replay(path)
	if err != nil {
		return err
	}
	f, csize, lines, err := c.compact(path)
	if err == nil {
		c.file, c.size, c.live = f, csize, lines
		return nil
	}
	// A full disk must not keep the broker from starting: the log as it is holds the
	// same offsets. Drop only a torn tail (truncating needs no space), so appends do not
	// land behind a line the replay stops at, and append from there.
	c.log.Warn("cannot compact offsets.log; appending to it as it is", "err", err)
	if size > good {
		if terr := os.Truncate(path, good); terr != nil {
			return errors.Join(err, fmt.Errorf("cannot drop the torn tail of %q: %w", path, terr))
		}
	}
	c.file, err = os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("cannot open %q: %w", path, err)
	}
	c.size, c.live = good, 0
	return nil
}

// replay applies offsets.log's lines in order. It returns the file's size and the end of
// its last complete, well-formed line: a line without its newline was torn by a crash
// (a commit is acknowledged only after its whole line is written).
func (c *Coordinator) replay(path string) (good, size int64, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("cannot open %q: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("cannot stat %q: %w", path, err)
	}
	r := bufio.NewReaderSize(f, 64<<10)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			if len(line) > 0 {
				c.log.Warn("ignoring a torn line at the end of offsets.log", "line", n)
			}
			break
		}
		if err != nil {
			return 0, 0, fmt.Errorf("cannot read %q: %w", path, err)
		}
		var rec commitRecord
		if err := json.Unmarshal(line[:len(line)-1], &rec); err != nil {
			c.log.Warn("ignoring a bad line and the rest of offsets.log", "line", n, "err", err)
			break
		}
		c.applyLocked(rec)
		good += int64(len(line))
	}
	return good, st.Size(), nil
}

// compact replaces offsets.log with the current offsets only, through a synced copy
// renamed over it and a synced directory, and returns it open for appending, with its
// size and number of lines. Once renamed, the copy is offsets.log and is returned even
// if the directory's fsync fails: appends to the old file would be lost at the next
// start (dirUnsynced says that fsync is owed).
func (c *Coordinator) compact(path string) (f *os.File, size int64, lines int, err error) {
	tmp := path + ".tmp"
	f, err = os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("cannot create %q: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriter(f)
	for _, g := range sortedKeys(c.offsets) {
		for t, parts := range c.offsets[g] {
			for p, o := range parts {
				line, _ := json.Marshal(commitRecord{Group: g, Topic: t, Partition: p, Offset: o.Offset, Epoch: o.LeaderEpoch, Metadata: o.Metadata, CommitMs: o.CommitMs})
				w.Write(append(line, '\n'))
				size += int64(len(line)) + 1
				lines++
			}
		}
	}
	if err := w.Flush(); err != nil {
		return nil, 0, 0, fmt.Errorf("cannot write %q: %w", tmp, err)
	}
	if err := syncFile(f); err != nil {
		return nil, 0, 0, fmt.Errorf("cannot sync %q: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, 0, 0, fmt.Errorf("cannot rename %q: %w", tmp, err)
	}
	c.dirUnsynced = true
	if err := c.syncDirLocked(); err != nil {
		c.log.Warn("offsets.log compacted, but its directory could not be synced; with flush: always, commits wait for it", "err", err)
	}
	return f, size, lines, nil
}

// syncDirLocked fsyncs the directory of offsets.log if a compaction's rename is not
// known to be durable yet.
func (c *Coordinator) syncDirLocked() error {
	if !c.dirUnsynced {
		return nil
	}
	if err := fsutil.SyncDirSync(c.opts.Dir, syncFile); err != nil {
		return err
	}
	c.dirUnsynced = false
	return nil
}

// syncFile is every fsync of offsets.log, its compacted copy and its directory; tests
// record or fail them through it.
var syncFile = (*os.File).Sync

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (c *Coordinator) applyLocked(r commitRecord) {
	if r.Delete {
		if r.Topic == "" {
			delete(c.offsets, r.Group)
		} else if parts := c.offsets[r.Group][r.Topic]; parts != nil {
			delete(parts, r.Partition)
		}
		return
	}
	g := c.offsets[r.Group]
	if g == nil {
		g = map[string]map[int32]Committed{}
		c.offsets[r.Group] = g
	}
	t := g[r.Topic]
	if t == nil {
		t = map[int32]Committed{}
		g[r.Topic] = t
	}
	t[r.Partition] = Committed{Offset: r.Offset, LeaderEpoch: r.Epoch, Metadata: r.Metadata, CommitMs: r.CommitMs}
}

// persistLocked appends records to offsets.log (fsync with Options.Sync) and applies
// them. Commits are acknowledged only after this returns.
func (c *Coordinator) persistLocked(rs []commitRecord) error {
	var buf []byte
	for _, r := range rs {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		buf = append(append(buf, line...), '\n')
	}
	if c.opts.Sync {
		if err := c.syncDirLocked(); err != nil {
			return fmt.Errorf("cannot make the compacted offsets.log durable: %w", err)
		}
	}
	if _, err := c.file.Write(buf); err != nil {
		// A short write (a full disk) leaves part of a line; later lines behind it would
		// be lost to the replay, which stops there. Cut it off again.
		if terr := c.file.Truncate(c.size); terr != nil {
			err = errors.Join(err, terr)
		}
		return fmt.Errorf("cannot append to offsets.log: %w", err)
	}
	if c.opts.Sync {
		if err := syncFile(c.file); err != nil {
			if terr := c.file.Truncate(c.size); terr != nil {
				err = errors.Join(err, terr)
			}
			return fmt.Errorf("cannot sync offsets.log: %w", err)
		}
	}
	c.size += int64(len(buf))
	for _, r := range rs {
		c.applyLocked(r)
	}
	c.appended += len(rs)
	if c.appended > max(compactMinLines, 4*c.live) {
		c.recompactLocked()
	}
	return nil
}

// compactMinLines: offsets.log is compacted while running once this many lines (and four
// times the live offsets) were appended since the last compaction; a consumer committing
// every 5 s on 6 partitions writes about 100 k lines a day.
var compactMinLines = 100_000 // a variable for tests

// recompactLocked compacts offsets.log while the broker runs. On failure (a full disk)
// it keeps appending to the log as it is and tries again after as many lines more.
func (c *Coordinator) recompactLocked() {
	c.appended = 0
	f, size, lines, err := c.compact(filepath.Join(c.opts.Dir, "offsets.log"))
	if err != nil {
		c.log.Warn("cannot compact offsets.log; appending to it as it is", "err", err)
		return
	}
	c.file.Close()
	c.file, c.size, c.live = f, size, lines
}

// Options are the coordinator's options in effect (defaults applied).
func (c *Coordinator) Options() Options { return c.opts }

// Close stops the reaper, answers waiting joins/syncs and closes offsets.log. Safe twice.
func (c *Coordinator) Close() error {
	var err error
	c.once.Do(func() {
		close(c.stop)
		c.wg.Wait()
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, g := range c.groups {
			for _, m := range g.members {
				c.failWaitersLocked(m, kerr.CoordinatorNotAvailable.Code)
			}
		}
		if c.file != nil {
			err = c.file.Close()
		}
	})
	return err
}

// reaper expires sessions, rebalance deadlines and, once a group is empty long enough,
// its offsets. It ticks every Tick only while some group has members or handed-out
// member ids; otherwise nothing can expire sooner than an empty group's offsets, so it
// checks once a minute (or every OffsetsRetention, if shorter) and a join wakes it. An
// idle broker (or one that only serves producers) thus does not wake every 100 ms: each
// tick woke a thread and the runtime's sysmon, as many wake-ups as ten produce requests.
func (c *Coordinator) reaper() {
	defer c.wg.Done()
	idleTick := max(c.opts.Tick, min(time.Minute, c.opts.OffsetsRetention))
	t := time.NewTicker(idleTick)
	defer t.Stop()
	period := idleTick
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		case <-c.kick:
		}
		want := idleTick
		if c.expire() {
			want = c.opts.Tick
		}
		if want != period {
			period = want
			t.Reset(period)
		}
	}
}

// kickReaper makes the reaper tick every Tick again (a member joined).
func (c *Coordinator) kickReaper() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// expire drops what has expired; it reports whether a group still has members or
// handed-out member ids (whose sessions must be watched every Tick).
func (c *Coordinator) expire() (watch bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for _, g := range c.groups {
		if g.cons != nil {
			if c.expireConsumerLocked(g, now) {
				watch = true
				continue
			}
		}
		for id, m := range g.members {
			// A member waiting in JoinGroup is not expected to heartbeat.
			if m.joinCh != nil {
				continue
			}
			if now.Sub(m.lastSeen) > m.session {
				c.log.Info("member session expired", "group", g.name, "member", id)
				c.removeMemberLocked(g, m)
			}
		}
		for id, t := range g.pending {
			if now.Sub(t) > c.opts.MaxSessionTimeout {
				delete(g.pending, id)
			}
		}
		if g.state == statePreparing && !now.Before(g.deadline) {
			c.completeJoinLocked(g)
		}
		if g.state == stateEmpty && !g.hasMembers() && !g.emptySince.IsZero() && now.Sub(g.emptySince) > c.opts.OffsetsRetention {
			// A group that never had a generation has no metadata record to remove.
			tombs := c.tombstonesLocked(g.name, nil, g.generation > 0)
			if _, ok := c.offsets[g.name]; ok {
				c.log.Info("offsets of an empty group expired", "group", g.name)
				if err := c.persistLocked([]commitRecord{{Group: g.name, Delete: true}}); err != nil {
					c.log.Error("cannot persist the expiry of a group's offsets", "group", g.name, "err", err)
					continue
				}
			}
			c.mirrorLocked(g.name, tombs)
			delete(c.groups, g.name)
			continue
		}
		if len(g.members) > 0 || len(g.pending) > 0 || g.state != stateEmpty {
			watch = true
		}
	}
	return watch
}

func newMemberID(clientID string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return clientID + "-" + hex.EncodeToString(b[:])
}

func (c *Coordinator) failWaitersLocked(m *member, code int16) {
	if m.joinCh != nil {
		m.joinCh <- &kmsg.JoinGroupResponse{ErrorCode: code, Generation: -1, MemberID: m.id}
		m.joinCh = nil
	}
	if m.syncCh != nil {
		m.syncCh <- &kmsg.SyncGroupResponse{ErrorCode: code}
		m.syncCh = nil
	}
}

func (c *Coordinator) removeMemberLocked(g *group, m *member) {
	c.failWaitersLocked(m, kerr.UnknownMemberID.Code)
	delete(g.members, m.id)
	if g.leader == m.id {
		g.leader = ""
	}
	if len(g.members) == 0 {
		c.becomeEmptyLocked(g)
		return
	}
	c.prepareRebalanceLocked(g, 0)
}

func (c *Coordinator) becomeEmptyLocked(g *group) {
	changed := g.state != stateEmpty
	if changed {
		g.generation++
	}
	g.state = stateEmpty
	g.protocol, g.leader = "", ""
	g.emptySince = c.now()
	if changed {
		c.log.Info("group is now empty", "group", g.name, "generation", g.generation)
		c.mirrorGroupLocked(g)
	}
}

// prepareRebalanceLocked starts a join phase: every member must rejoin before the
// deadline (the longest rebalance timeout), or is dropped from the next generation.
func (c *Coordinator) prepareRebalanceLocked(g *group, delay time.Duration) {
	if g.state == stateCompleting {
		// Members waiting for their assignment learn the generation is over.
		for _, m := range g.members {
			if m.syncCh != nil {
				m.syncCh <- &kmsg.SyncGroupResponse{ErrorCode: kerr.RebalanceInProgress.Code}
				m.syncCh = nil
			}
		}
	}
	if g.state != statePreparing {
		var longest time.Duration
		for _, m := range g.members {
			longest = max(longest, m.rebalance)
			m.joined = m.joinCh != nil
		}
		if delay > 0 {
			longest = delay
			g.holdUntil = c.now().Add(delay)
		}
		g.deadline = c.now().Add(longest)
		// Kafka's "Preparing to rebalance group … with old generation …".
		c.log.Info("preparing to rebalance group", "group", g.name, "state", g.state.String(), "old_generation", g.generation, "members", len(g.members))
		g.state = statePreparing
	}
	c.maybeCompleteJoinLocked(g)
}

func (c *Coordinator) maybeCompleteJoinLocked(g *group) {
	now := c.now()
	if g.state != statePreparing || now.Before(g.holdUntil) || now.Before(g.deadline) && !allJoined(g) {
		return
	}
	c.completeJoinLocked(g)
}

func allJoined(g *group) bool {
	for _, m := range g.members {
		if !m.joined {
			return false
		}
	}
	return len(g.members) > 0
}

// completeJoinLocked ends the join phase: members that did not rejoin are dropped, the
// generation advances, a protocol every member supports is chosen and every waiting
// JoinGroup is answered (the leader gets the members' metadata).
func (c *Coordinator) completeJoinLocked(g *group) {
	for _, m := range g.members {
		if !m.joined {
			c.log.Info("member dropped: did not rejoin in time", "group", g.name, "member", m.id)
			c.failWaitersLocked(m, kerr.UnknownMemberID.Code)
			delete(g.members, m.id)
		}
	}
	if len(g.members) == 0 {
		c.becomeEmptyLocked(g)
		return
	}
	g.generation++
	g.protocol = chooseProtocol(g)
	if _, ok := g.members[g.leader]; !ok {
		ids := sortedKeys(g.members)
		g.leader = ids[0]
	}
	g.state = stateCompleting
	c.log.Info("stabilized group", "group", g.name, "generation", g.generation, "protocol", g.protocol, "members", len(g.members))
	var all []kmsg.JoinGroupResponseMember
	for _, id := range sortedKeys(g.members) {
		m := g.members[id]
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = id
		if m.instanceID != "" {
			iid := m.instanceID
			jm.InstanceID = &iid
		}
		for _, p := range m.protocols {
			if p.Name == g.protocol {
				jm.ProtocolMetadata = p.Metadata
			}
		}
		all = append(all, jm)
	}
	for _, m := range g.members {
		m.joined = false
		m.assignment = nil
		m.lastSeen = c.now()
		if m.joinCh == nil {
			continue
		}
		resp := kmsg.NewPtrJoinGroupResponse()
		resp.Generation = g.generation
		pt, proto := g.protocolType, g.protocol
		resp.ProtocolType, resp.Protocol = &pt, &proto
		resp.LeaderID, resp.MemberID = g.leader, m.id
		if m.id == g.leader {
			resp.Members = all
		}
		m.joinCh <- resp
		m.joinCh = nil
	}
}

// chooseProtocol picks the protocol every member supports with the most first-choice
// votes (Kafka's rule).
func chooseProtocol(g *group) string {
	counts := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			counts[p.Name]++
		}
	}
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if counts[p.Name] == len(g.members) {
				votes[p.Name]++
				break
			}
		}
	}
	best, bestVotes := "", -1
	for _, name := range sortedKeys(votes) {
		if votes[name] > bestVotes {
			best, bestVotes = name, votes[name]
		}
	}
	return best
}

// JoinRequest carries who sent a JoinGroup.
type JoinRequest struct {
	Req        *kmsg.JoinGroupRequest
	ClientID   string
	ClientHost string
}

// JoinGroup adds or refreshes a member and waits until the join phase completes (or ctx
// ends: the connection closed). The response version is set by the caller.
func (c *Coordinator) JoinGroup(ctx context.Context, jr JoinRequest) *kmsg.JoinGroupResponse {
	req := jr.Req
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Generation, resp.MemberID = -1, req.MemberID
	fail := func(e *kerr.Error) *kmsg.JoinGroupResponse { resp.ErrorCode = e.Code; return resp }
	if req.Group == "" {
		return fail(kerr.InvalidGroupID)
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	if session < c.opts.MinSessionTimeout || session > c.opts.MaxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout)
	}
	rebalance := session
	if req.Version >= 1 && req.RebalanceTimeoutMillis > 0 {
		rebalance = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	if len(req.Protocols) == 0 || req.ProtocolType == "" {
		return fail(kerr.InconsistentGroupProtocol)
	}
	c.mu.Lock()
	g := c.groups[req.Group]
	if g == nil {
		g = &group{name: req.Group, members: map[string]*member{}, pending: map[string]time.Time{}, emptySince: c.now()}
		c.groups[req.Group] = g
	}
	if g.cons != nil {
		if len(g.cons.members) > 0 {
			// Kafka would take the classic member into the consumer group (online
			// migration); that is not served here.
			c.mu.Unlock()
			return fail(kerr.InconsistentGroupProtocol)
		}
		// An Empty consumer group becomes a classic one, with its offsets (Kafka).
		c.log.Info("empty consumer group converted to a classic group", "group", g.name)
		g.cons, g.protocolType = nil, ""
	}
	if len(g.members) > 0 && (req.ProtocolType != g.protocolType || !supportsCommon(g, req.Protocols)) {
		c.mu.Unlock()
		return fail(kerr.InconsistentGroupProtocol)
	}
	instanceID := ""
	if req.InstanceID != nil {
		instanceID = *req.InstanceID
	}
	var m *member
	switch {
	case req.MemberID == "" && instanceID != "":
		// Static member: a restart replaces its previous incarnation.
		for _, old := range g.members {
			if old.instanceID == instanceID {
				c.failWaitersLocked(old, kerr.FencedInstanceID.Code)
				delete(g.members, old.id)
				if g.leader == old.id {
					g.leader = ""
				}
			}
		}
		m = &member{id: newMemberID(jr.ClientID), instanceID: instanceID}
	case req.MemberID == "":
		id := newMemberID(jr.ClientID)
		if req.Version >= 4 {
			g.pending[id] = c.now()
			c.kickReaper()
			c.mu.Unlock()
			resp.MemberID = id
			return fail(kerr.MemberIDRequired)
		}
		m = &member{id: id}
	default:
		if instanceID != "" {
			if code := checkMember(g, req.MemberID, req.InstanceID); code == kerr.FencedInstanceID.Code {
				c.mu.Unlock()
				return fail(kerr.FencedInstanceID)
			}
		}
		if m = g.members[req.MemberID]; m == nil {
			if _, ok := g.pending[req.MemberID]; !ok {
				c.mu.Unlock()
				return fail(kerr.UnknownMemberID)
			}
			delete(g.pending, req.MemberID)
			m = &member{id: req.MemberID, instanceID: instanceID}
		}
	}
	if m.joinCh != nil { // a second join from the same member replaces the first
		m.joinCh <- &kmsg.JoinGroupResponse{ErrorCode: kerr.RebalanceInProgress.Code, Generation: -1, MemberID: m.id}
	}
	m.clientID, m.clientHost = jr.ClientID, jr.ClientHost
	m.protocolType, m.protocols = req.ProtocolType, req.Protocols
	m.session, m.rebalance = session, rebalance
	m.lastSeen = c.now()
	m.joined = true
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	m.joinCh = ch
	g.members[m.id] = m
	c.kickReaper()
	c.log.Debug("member joining", "group", g.name, "member", m.id, "client_id", m.clientID, "host", m.clientHost, "state", g.state.String())
	g.protocolType = req.ProtocolType
	delay := time.Duration(0)
	if g.state == stateEmpty {
		delay = c.opts.InitialRebalanceDelay
	}
	if g.state == statePreparing {
		c.maybeCompleteJoinLocked(g)
	} else {
		c.prepareRebalanceLocked(g, delay)
	}
	c.mu.Unlock()
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		c.mu.Lock()
		if m.joinCh == ch {
			m.joinCh = nil
		}
		c.mu.Unlock()
		return fail(kerr.CoordinatorNotAvailable)
	}
}

func supportsCommon(g *group, ps []kmsg.JoinGroupRequestProtocol) bool {
	for _, p := range ps {
		all := true
		for _, m := range g.members {
			found := false
			for _, mp := range m.protocols {
				if mp.Name == p.Name {
					found = true
					break
				}
			}
			if !found {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// SyncGroup takes the leader's assignment and hands each member its own, waiting for
// the leader if needed.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	c.mu.Lock()
	g := c.groups[req.Group]
	var m *member
	code := kerr.UnknownMemberID.Code
	if g != nil {
		if code = checkMember(g, req.MemberID, req.InstanceID); code == 0 {
			m = g.members[req.MemberID]
		}
	}
	switch {
	case m == nil:
		c.mu.Unlock()
		resp.ErrorCode = code
		return resp
	case req.Generation != g.generation:
		c.mu.Unlock()
		resp.ErrorCode = kerr.IllegalGeneration.Code
		return resp
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		// v5: Kafka's validateSyncGroup checks the client's view of the group's protocol.
		c.mu.Unlock()
		resp.ErrorCode = kerr.InconsistentGroupProtocol.Code
		return resp
	case g.state == statePreparing:
		c.mu.Unlock()
		resp.ErrorCode = kerr.RebalanceInProgress.Code
		return resp
	}
	m.lastSeen = c.now()
	pt, proto := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &proto
	if g.state == stateStable {
		resp.MemberAssignment = m.assignment
		c.mu.Unlock()
		return resp
	}
	if m.id == g.leader {
		for _, a := range req.GroupAssignment {
			if am := g.members[a.MemberID]; am != nil {
				am.assignment = a.MemberAssignment
			}
		}
		g.state = stateStable
		c.log.Debug("assignment received from the leader", "group", g.name, "generation", g.generation, "leader", m.id, "members", len(req.GroupAssignment))
		for _, om := range g.members {
			if om.syncCh != nil {
				r := kmsg.NewPtrSyncGroupResponse()
				r.ProtocolType, r.Protocol = &pt, &proto
				r.MemberAssignment = om.assignment
				om.syncCh <- r
				om.syncCh = nil
			}
		}
		resp.MemberAssignment = m.assignment
		c.mirrorGroupLocked(g)
		c.mu.Unlock()
		return resp
	}
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	m.syncCh = ch
	c.mu.Unlock()
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
}

// Heartbeat keeps a member's session alive and tells it when to rejoin.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[req.Group]
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	if code := checkMember(g, req.MemberID, req.InstanceID); code != 0 {
		return code
	}
	m := g.members[req.MemberID]
	if req.Generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	m.lastSeen = c.now()
	if g.state == statePreparing {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// LeaveGroup removes members (by id, or by instance id for static members).
func (c *Coordinator) LeaveGroup(name string, memberIDs, instanceIDs []string) []int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	out := make([]int16, len(memberIDs))
	for i, id := range memberIDs {
		if g == nil {
			out[i] = kerr.UnknownMemberID.Code
			continue
		}
		// Kafka's classicGroupLeave: by instance id, the static member with it, unless the
		// request names another member id (an old incarnation: FENCED_INSTANCE_ID, so it
		// cannot remove its replacement); else by member id.
		var m *member
		if instanceIDs[i] != "" {
			m = staticMember(g, instanceIDs[i])
			if m != nil && id != "" && m.id != id {
				out[i] = kerr.FencedInstanceID.Code
				continue
			}
		} else {
			m = g.members[id]
		}
		if m == nil {
			out[i] = kerr.UnknownMemberID.Code
			continue
		}
		c.log.Info("member left", "group", name, "member", m.id)
		c.removeMemberLocked(g, m)
	}
	return out
}

// Commit stores offsets for a group. generation -1 with an empty member id is a
// "simple" commit, allowed while the group has no members.
func (c *Coordinator) Commit(name, memberID string, generation int32, offs map[string]map[int32]Committed) int16 {
	return c.CommitFrom(name, memberID, nil, generation, offs)
}

// CommitFrom is Commit for a request that may name a group.instance.id (OffsetCommit
// v7+): as in Kafka's validateOffsetCommit, a replaced static member's commit gets
// FENCED_INSTANCE_ID.
func (c *Coordinator) CommitFrom(name, memberID string, instanceID *string, generation int32, offs map[string]map[int32]Committed) int16 {
	return c.CommitVersion(name, memberID, instanceID, generation, 9, offs)
}

// CommitVersion is CommitFrom for an OffsetCommit of the given version: a member of a
// consumer group (KIP-848) must use v9+, whose generation is its member epoch
// (checkConsumerCommitLocked).
func (c *Coordinator) CommitVersion(name, memberID string, instanceID *string, generation int32, version int16, offs map[string]map[int32]Committed) int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	static := instanceID != nil && *instanceID != ""
	switch {
	case g != nil && g.cons != nil:
		if code := c.checkConsumerCommitLocked(g.cons, memberID, generation, version, false, offs); code != 0 {
			return code
		}
		if m := g.cons.members[memberID]; m != nil {
			m.lastSeen = c.now()
		}
	case generation < 0 && (g == nil || len(g.members) == 0):
		// The admin client, or a consumer without group management: allowed while the
		// group has no members, whatever member id it names (Kafka's validateOffsetCommit).
	case generation >= 0 || memberID != "" || static:
		if g == nil {
			return kerr.UnknownMemberID.Code
		}
		if code := checkMember(g, memberID, instanceID); code != 0 {
			return code
		}
		if generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
		if g.state == stateCompleting {
			return kerr.RebalanceInProgress.Code
		}
		g.members[memberID].lastSeen = c.now()
	default:
		return kerr.UnknownMemberID.Code
	}
	if g == nil {
		g = &group{name: name, members: map[string]*member{}, pending: map[string]time.Time{}, emptySince: c.now()}
		c.groups[name] = g
	}
	var rs []commitRecord
	nowMs := c.now().UnixMilli()
	for t, parts := range offs {
		for p, o := range parts {
			rs = append(rs, commitRecord{Group: name, Topic: t, Partition: p, Offset: o.Offset, Epoch: o.LeaderEpoch, Metadata: o.Metadata, CommitMs: nowMs})
		}
	}
	if err := c.persistLocked(rs); err != nil {
		c.log.Error("cannot persist offsets", "group", name, "err", err)
		return kerr.KafkaStorageError.Code
	}
	c.mirrorLocked(name, offsetRecords(rs))
	c.log.Debug("offsets committed", "group", name, "member", memberID, "generation", generation, "partitions", len(rs))
	return 0
}

// Fetch returns a group's committed offsets (all topics when topics is nil).
func (c *Coordinator) Fetch(name string) map[string]map[int32]Committed {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]map[int32]Committed{}
	for t, parts := range c.offsets[name] {
		cp := make(map[int32]Committed, len(parts))
		for p, o := range parts {
			cp[p] = o
		}
		out[t] = cp
	}
	return out
}

// GroupInfo describes a group for DescribeGroups / ListGroups.
type GroupInfo struct {
	Name, State, ProtocolType, Protocol string
	// Type is "classic" or "consumer" (KIP-848: Generation is the group epoch, Members
	// have no metadata or assignment; DescribeConsumer has the rest).
	Type       string
	Generation int32
	Members    []MemberInfo
}

// MemberInfo describes one member.
type MemberInfo struct {
	ID, InstanceID, ClientID, ClientHost string
	Metadata, Assignment                 []byte
}

// Describe returns a group, or ok=false when the coordinator does not know it (it may
// still have committed offsets: then it is reported Empty).
func (c *Coordinator) Describe(name string) (GroupInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	if g == nil {
		if _, ok := c.offsets[name]; ok {
			return GroupInfo{Name: name, State: "Empty", Type: "classic"}, true
		}
		return GroupInfo{Name: name, State: "Dead"}, false
	}
	if g.cons != nil {
		gi := GroupInfo{Name: name, State: g.cons.state(), ProtocolType: "consumer", Type: "consumer", Generation: g.cons.epoch}
		for _, id := range sortedKeys(g.cons.members) {
			m := g.cons.members[id]
			gi.Members = append(gi.Members, MemberInfo{ID: id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost})
		}
		return gi, true
	}
	gi := GroupInfo{Name: name, State: g.state.String(), ProtocolType: g.protocolType, Protocol: g.protocol, Type: "classic", Generation: g.generation}
	for _, id := range sortedKeys(g.members) {
		m := g.members[id]
		mi := MemberInfo{ID: id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost, Assignment: m.assignment}
		for _, p := range m.protocols {
			if p.Name == g.protocol {
				mi.Metadata = p.Metadata
			}
		}
		gi.Members = append(gi.Members, mi)
	}
	return gi, true
}

// List returns every group with members or committed offsets.
func (c *Coordinator) List() []GroupInfo {
	c.mu.Lock()
	names := map[string]bool{}
	for n := range c.groups {
		names[n] = true
	}
	for n := range c.offsets {
		names[n] = true
	}
	c.mu.Unlock()
	var out []GroupInfo
	for _, n := range sortedKeys(names) {
		gi, _ := c.Describe(n)
		out = append(out, gi)
	}
	return out
}

// Delete removes an empty group and its offsets.
func (c *Coordinator) Delete(name string) int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	_, hasOffsets := c.offsets[name]
	if g == nil && !hasOffsets {
		return kerr.GroupIDNotFound.Code
	}
	if g != nil && g.hasMembers() {
		return kerr.NonEmptyGroup.Code
	}
	tombs := c.tombstonesLocked(name, nil, true)
	if err := c.persistLocked([]commitRecord{{Group: name, Delete: true}}); err != nil {
		return kerr.KafkaStorageError.Code
	}
	c.mirrorLocked(name, tombs)
	delete(c.groups, name)
	return 0
}

// DeleteOffsets removes committed offsets of some partitions (OffsetDelete). A topic the
// group's members are subscribed to is refused (GROUP_SUBSCRIBED_TO_TOPIC), as Kafka
// does; subscriptions are read from the members' "consumer" protocol metadata. A group
// with members of another protocol type (connect, …) is NON_EMPTY_GROUP, as in Kafka's
// ClassicGroup.validateOffsetDelete: its subscriptions cannot be read.
func (c *Coordinator) DeleteOffsets(name string, topics map[string][]int32) (int16, map[string]int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	if g == nil && c.offsets[name] == nil {
		return kerr.GroupIDNotFound.Code, nil
	}
	if g != nil && len(g.members) > 0 && g.protocolType != "consumer" {
		return kerr.NonEmptyGroup.Code, nil
	}
	subscribed := map[string]bool{}
	if g != nil && g.cons != nil {
		// Kafka's ConsumerGroup.validateOffsetDelete takes any state; a topic a member
		// subscribes to (by name or regex) is refused below.
		for t := range topics {
			subscribed[t] = g.cons.subscribedTopic(t)
		}
	} else if g != nil && g.protocolType == "consumer" {
		for _, m := range g.members {
			for _, p := range m.protocols {
				if p.Name != g.protocol {
					continue
				}
				var meta kmsg.ConsumerMemberMetadata
				if meta.ReadFrom(p.Metadata) == nil {
					for _, t := range meta.Topics {
						subscribed[t] = true
					}
				}
			}
		}
	}
	perTopic := map[string]int16{}
	var rs []commitRecord
	deleted := map[string][]int32{}
	for t, parts := range topics {
		if subscribed[t] {
			perTopic[t] = kerr.GroupSubscribedToTopic.Code
			continue
		}
		for _, p := range parts {
			rs = append(rs, commitRecord{Group: name, Topic: t, Partition: p, Delete: true})
		}
		deleted[t] = parts
	}
	tombs := c.tombstonesLocked(name, deleted, false)
	if err := c.persistLocked(rs); err != nil {
		return kerr.KafkaStorageError.Code, nil
	}
	c.mirrorLocked(name, tombs)
	return 0, perTopic
}

// staticMember returns the group's member with a group.instance.id, or nil.
func staticMember(g *group, instanceID string) *member {
	for _, m := range g.members {
		if m.instanceID == instanceID {
			return m
		}
	}
	return nil
}

// checkMember is Kafka's ClassicGroup.validateMember for Heartbeat, SyncGroup and a
// known member's JoinGroup: a request naming a group.instance.id must come from that
// static member's current member id (else FENCED_INSTANCE_ID, which tells an old
// incarnation replaced by a restart to stop instead of rejoining and replacing its
// successor); without one, the member id must be known.
func checkMember(g *group, memberID string, instanceID *string) int16 {
	if instanceID != nil && *instanceID != "" {
		m := staticMember(g, *instanceID)
		switch {
		case m == nil:
			return kerr.UnknownMemberID.Code
		case m.id != memberID:
			return kerr.FencedInstanceID.Code
		}
		return 0
	}
	if g.members[memberID] == nil {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

// CheckTxnMember validates a TxnOffsetCommit's member fields (v3+), as Kafka's
// validateOffsetCommit: generation -1 with no member id is not checked; otherwise the
// member must be the group's (FENCED_INSTANCE_ID for a replaced static member) at its
// current generation.
func (c *Coordinator) CheckTxnMember(name, memberID string, instanceID *string, generation int32) int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if generation < 0 && memberID == "" && (instanceID == nil || *instanceID == "") {
		return 0
	}
	g := c.groups[name]
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	if g.cons != nil {
		return c.checkConsumerCommitLocked(g.cons, memberID, generation, 9, true, nil)
	}
	if code := checkMember(g, memberID, instanceID); code != 0 {
		return code
	}
	if generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	return 0
}

// CommitTxn stores the offsets of a committed transaction (TxnOffsetCommit, checked
// when it was sent), durably, whatever the group's members are doing now.
func (c *Coordinator) CommitTxn(name string, offs map[string]map[int32]Committed) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.groups[name] == nil {
		c.groups[name] = &group{name: name, members: map[string]*member{}, pending: map[string]time.Time{}, emptySince: c.now()}
	}
	var rs []commitRecord
	nowMs := c.now().UnixMilli()
	for t, parts := range offs {
		for p, o := range parts {
			rs = append(rs, commitRecord{Group: name, Topic: t, Partition: p, Offset: o.Offset, Epoch: o.LeaderEpoch, Metadata: o.Metadata, CommitMs: nowMs})
		}
	}
	if err := c.persistLocked(rs); err != nil {
		return err
	}
	c.mirrorLocked(name, offsetRecords(rs))
	return nil
}
