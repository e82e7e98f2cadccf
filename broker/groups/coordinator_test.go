package groups

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTest(t *testing.T) (*Coordinator, *clock) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	o := DefaultOptions()
	o.Dir = t.TempDir()
	o.Now = clk.now
	o.InitialRebalanceDelay = 0
	o.Tick = time.Hour // tests call expire() themselves
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, clk
}

func joinReq(v int16, group, member string, protocols ...string) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = v
	r.Group, r.MemberID, r.ProtocolType = group, member, "consumer"
	r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = 10_000, 20_000
	for _, p := range protocols {
		jp := kmsg.NewJoinGroupRequestProtocol()
		jp.Name, jp.Metadata = p, []byte(p)
		r.Protocols = append(r.Protocols, jp)
	}
	return r
}

// joinAsync runs JoinGroup in a goroutine (it blocks until the join phase completes).
func joinAsync(c *Coordinator, r *kmsg.JoinGroupRequest) <-chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	go func() {
		ch <- c.JoinGroup(context.Background(), JoinRequest{Req: r, ClientID: "cl", ClientHost: "/127.0.0.1"})
	}()
	return ch
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("no response")
	}
	var zero T
	return zero
}

func TestRebalanceStateMachine(t *testing.T) {
	c, clk := newTest(t)
	// v4+: the first join only hands out a member id.
	r := recv(t, joinAsync(c, joinReq(9, "g", "", "range", "roundrobin")))
	if r.ErrorCode != kerr.MemberIDRequired.Code || r.MemberID == "" {
		t.Fatalf("first join: %+v", r)
	}
	a := r.MemberID
	ra := recv(t, joinAsync(c, joinReq(9, "g", a, "range", "roundrobin")))
	if ra.ErrorCode != 0 || ra.Generation != 1 || ra.LeaderID != a || len(ra.Members) != 1 || *ra.Protocol != "range" {
		t.Fatalf("join a: %+v", ra)
	}
	if gi, _ := c.Describe("g"); gi.State != "CompletingRebalance" {
		t.Fatalf("state %s", gi.State)
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = "g", a, 1
	as := kmsg.NewSyncGroupRequestGroupAssignment()
	as.MemberID, as.MemberAssignment = a, []byte("all")
	sync.GroupAssignment = append(sync.GroupAssignment, as)
	if sr := c.SyncGroup(context.Background(), sync); sr.ErrorCode != 0 || string(sr.MemberAssignment) != "all" {
		t.Fatalf("sync: %+v", sr)
	}
	if gi, _ := c.Describe("g"); gi.State != "Stable" {
		t.Fatalf("state %s", gi.State)
	}
	hb := &kmsg.HeartbeatRequest{Group: "g", MemberID: a, Generation: 1}
	if code := c.Heartbeat(hb); code != 0 {
		t.Fatalf("heartbeat %d", code)
	}
	// A member with no common protocol is refused.
	if r := recv(t, joinAsync(c, joinReq(3, "g", "", "sticky"))); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("inconsistent: %d", r.ErrorCode)
	}
	// b joins (v3: no member id round trip): a learns through its heartbeat and rejoins.
	bch := joinAsync(c, joinReq(3, "g", "", "roundrobin", "range"))
	waitState(t, c, "PreparingRebalance")
	if code := c.Heartbeat(hb); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat during rebalance %d", code)
	}
	ra = recv(t, joinAsync(c, joinReq(9, "g", a, "range", "roundrobin")))
	rb := recv(t, bch)
	if ra.Generation != 2 || rb.Generation != 2 || ra.LeaderID != a || len(ra.Members) != 2 || len(rb.Members) != 0 {
		t.Fatalf("gen 2: a %+v b %+v", ra, rb)
	}
	// Votes: a prefers range, b roundrobin; both support both: the tie goes by name.
	if *ra.Protocol != "range" {
		t.Fatalf("protocol %s", *ra.Protocol)
	}
	if code := c.Heartbeat(hb); code != kerr.IllegalGeneration.Code {
		t.Fatalf("old generation heartbeat %d", code)
	}
	// b's session expires (a keeps heartbeating): back to a alone.
	for i := 0; i < 12; i++ {
		clk.add(time.Second)
		c.Heartbeat(&kmsg.HeartbeatRequest{Group: "g", MemberID: a, Generation: 2})
		c.expire()
	}
	if gi, _ := c.Describe("g"); gi.State != "PreparingRebalance" || len(gi.Members) != 1 {
		t.Fatalf("after b expired: %+v", gi)
	}
	// a leaves: the group is empty.
	if codes := c.LeaveGroup("g", []string{a}, []string{""}); codes[0] != 0 {
		t.Fatalf("leave %v", codes)
	}
	if gi, _ := c.Describe("g"); gi.State != "Empty" || len(gi.Members) != 0 {
		t.Fatalf("after leave: %+v", gi)
	}
	if code := c.Heartbeat(hb); code != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat after leave %d", code)
	}
}

func waitState(t *testing.T, c *Coordinator, state string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if gi, _ := c.Describe("g"); gi.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group never reached %s", state)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRebalanceTimeoutDropsSilentMembers(t *testing.T) {
	c, clk := newTest(t)
	a := recv(t, joinAsync(c, joinReq(3, "g", "", "range"))).MemberID
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = "g", a, 1
	c.SyncGroup(context.Background(), sync)
	bch := joinAsync(c, joinReq(3, "g", "", "range"))
	waitState(t, c, "PreparingRebalance")
	// a never rejoins: after the rebalance timeout (20s) the new generation has b only.
	clk.add(21 * time.Second)
	c.expire()
	rb := recv(t, bch)
	if rb.ErrorCode != 0 || rb.Generation != 2 || rb.LeaderID != rb.MemberID || len(rb.Members) != 1 {
		t.Fatalf("b after timeout: %+v", rb)
	}
}

func TestOffsetsDurableAndRetention(t *testing.T) {
	c, clk := newTest(t)
	offs := map[string]map[int32]Committed{"t": {0: {Offset: 42, LeaderEpoch: 0, Metadata: "meta"}, 1: {Offset: 7}}}
	if code := c.Commit("g", "", -1, offs); code != 0 {
		t.Fatalf("simple commit %d", code)
	}
	if code := c.Commit("g", "nobody", 3, offs); code != kerr.UnknownMemberID.Code {
		t.Fatalf("commit from unknown member %d", code)
	}
	if code := c.Commit("h", "", -1, offs); code != 0 {
		t.Fatal(code)
	}
	if code := c.Delete("h"); code != 0 {
		t.Fatal(code)
	}
	dir := c.opts.Dir
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	o := c.opts
	c2, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	got := c2.Fetch("g")
	if got["t"][0].Offset != 42 || got["t"][0].Metadata != "meta" || got["t"][1].Offset != 7 || len(c2.Fetch("h")) != 0 {
		t.Fatalf("after reopen of %s: %+v / h %+v", dir, got, c2.Fetch("h"))
	}
	// A group known only from offsets.log is Empty from the start on: its offsets go
	// offsets retention after it, not before, and the deletion is durable too.
	clk.add(o.OffsetsRetention - time.Minute)
	c2.expire()
	if len(c2.Fetch("g")["t"]) != 2 {
		t.Fatal("offsets of a group loaded at start expired before retention")
	}
	clk.add(2 * time.Minute)
	c2.expire()
	if len(c2.Fetch("g")) != 0 {
		t.Fatal("offsets of a group loaded at start outlived retention")
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	c3, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if len(c3.Fetch("g")) != 0 {
		t.Fatal("expired offsets came back after a restart")
	}
}

func TestJoinWaitEndsWithContext(t *testing.T) {
	c, _ := newTest(t)
	a := recv(t, joinAsync(c, joinReq(3, "g", "", "range"))).MemberID
	_ = a
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { ch <- c.JoinGroup(ctx, JoinRequest{Req: joinReq(3, "g", "", "range")}) }()
	waitState(t, c, "PreparingRebalance")
	cancel()
	if r := recv(t, ch); r.ErrorCode == 0 {
		t.Fatal("canceled join answered without error")
	}
}

func TestDeleteOffsets(t *testing.T) {
	c, _ := newTest(t)
	c.Commit("g", "", -1, map[string]map[int32]Committed{"t": {0: {Offset: 1}, 1: {Offset: 2}}})
	if code, per := c.DeleteOffsets("g", map[string][]int32{"t": {0}}); code != 0 || per["t"] != 0 {
		t.Fatalf("delete %d %v", code, per)
	}
	if got := c.Fetch("g"); len(got["t"]) != 1 || got["t"][1].Offset != 2 {
		t.Fatalf("after delete %+v", got)
	}
	if code, _ := c.DeleteOffsets("nope", map[string][]int32{"t": {0}}); code != kerr.GroupIDNotFound.Code {
		t.Fatalf("unknown group %d", code)
	}
}

func TestStaticMemberAndSessionBounds(t *testing.T) {
	c, _ := newTest(t)
	bad := joinReq(5, "g", "", "range")
	bad.SessionTimeoutMillis = 10 // below group.min.session.timeout
	if r := recv(t, joinAsync(c, bad)); r.ErrorCode != kerr.InvalidSessionTimeout.Code {
		t.Fatalf("session bounds: %d", r.ErrorCode)
	}
	static := func() *kmsg.JoinGroupRequest {
		r := joinReq(5, "g", "", "range")
		r.InstanceID = kmsg.StringPtr("host-1")
		return r
	}
	// Static members skip the member-id round trip, and a restart with the same instance
	// id replaces the old incarnation.
	r1 := recv(t, joinAsync(c, static()))
	if r1.ErrorCode != 0 || r1.Generation != 1 {
		t.Fatalf("static join: %+v", r1)
	}
	r2 := recv(t, joinAsync(c, static()))
	if r2.ErrorCode != 0 || r2.MemberID == r1.MemberID {
		t.Fatalf("static rejoin: %+v", r2)
	}
	gi, _ := c.Describe("g")
	if len(gi.Members) != 1 || gi.Members[0].InstanceID != "host-1" || gi.Members[0].ID != r2.MemberID {
		t.Fatalf("members after static restart: %+v", gi.Members)
	}
	if code := c.Heartbeat(&kmsg.HeartbeatRequest{Group: "g", MemberID: r1.MemberID, Generation: r1.Generation}); code != kerr.UnknownMemberID.Code {
		t.Fatalf("old incarnation heartbeat: %d", code)
	}
}

// reopen starts a coordinator on a closed one's options (its offsets.log).
func reopen(t *testing.T, o Options) *Coordinator {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// A broker restarted on a full disk cannot write the compacted copy of offsets.log. It
// must still start with every committed offset, drop a torn last line, and keep
// committing to the log as it is.
func TestOffsetsLogStartsWhenItCannotCompact(t *testing.T) {
	c, _ := newTest(t)
	o := c.opts
	c.Commit("g", "", -1, map[string]map[int32]Committed{"t": {0: {Offset: 10}, 1: {Offset: 20}}})
	c.Commit("g", "", -1, map[string]map[int32]Committed{"t": {0: {Offset: 11}}})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(o.Dir, "offsets.log")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"g":"g","t":"t","p":1,"o":9`) // torn by a crash: never acknowledged
	f.Close()
	// The compacted copy cannot be created (as on a full disk).
	if err := os.Mkdir(path+".tmp", 0o755); err != nil {
		t.Fatal(err)
	}
	c2 := reopen(t, o)
	if got := c2.Fetch("g")["t"]; got[0].Offset != 11 || got[1].Offset != 20 {
		t.Fatalf("offsets after a start without compaction: %+v", got)
	}
	if code := c2.Commit("g", "", -1, map[string]map[int32]Committed{"t": {1: {Offset: 21}}}); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path + ".tmp"); err != nil {
		t.Fatal(err)
	}
	c3 := reopen(t, o)
	if got := c3.Fetch("g")["t"]; got[0].Offset != 11 || got[1].Offset != 21 {
		t.Fatalf("the commit after the torn line was lost: %+v", got)
	}
}

// offsets.log is compacted while the broker runs, not only at start, so a long-running
// broker's log stays about as large as its live offsets.
func TestOffsetsLogCompactsWhileRunning(t *testing.T) {
	defer func(n int) { compactMinLines = n }(compactMinLines)
	compactMinLines = 50
	c, _ := newTest(t)
	o := c.opts
	for i := range 1000 {
		if code := c.Commit("g", "", -1, map[string]map[int32]Committed{"t": {0: {Offset: int64(i)}, 1: {Offset: int64(2 * i)}}}); code != 0 {
			t.Fatalf("commit %d: %d", i, code)
		}
	}
	b, err := os.ReadFile(filepath.Join(o.Dir, "offsets.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte("\n")); n > compactMinLines+2 {
		t.Fatalf("offsets.log has %d lines after 2000 commits of 2 partitions", n)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := reopen(t, o).Fetch("g")["t"]; got[0].Offset != 999 || got[1].Offset != 1998 {
		t.Fatalf("after reopen: %+v", got)
	}
}

// recordSyncs replaces syncFile for the rest of the test: it records each fsync (the
// file's base name, or for offsets.log's directory whether the compacted copy had been
// renamed into place by then) and fails directory fsyncs while *failDir is set.
func recordSyncs(t *testing.T, failDir *bool) *[]string {
	var ops []string
	orig := syncFile
	syncFile = func(f *os.File) error {
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if !st.IsDir() {
			ops = append(ops, filepath.Base(f.Name()))
			return orig(f)
		}
		_, tmpErr := os.Stat(filepath.Join(f.Name(), "offsets.log.tmp"))
		_, logErr := os.Stat(filepath.Join(f.Name(), "offsets.log"))
		ops = append(ops, fmt.Sprintf("dir renamed=%v", errors.Is(tmpErr, os.ErrNotExist) && logErr == nil))
		if failDir != nil && *failDir {
			return errors.New("input/output error")
		}
		return orig(f)
	}
	t.Cleanup(func() { syncFile = orig })
	return &ops
}

// Compaction (at start and while running) writes and fsyncs a copy, renames it over
// offsets.log and then fsyncs the directory. Without the last fsync a power cut can
// undo the rename, and the commits appended to the new file since are lost with it:
// the group's offsets go back.
func TestOffsetsLogCompactionSyncsDirectory(t *testing.T) {
	defer func(n int) { compactMinLines = n }(compactMinLines)
	compactMinLines = 10
	ops := recordSyncs(t, nil)
	c, _ := newTest(t) // compacts at start
	for i := range 12 {
		c.Commit("g", "", -1, map[string]map[int32]Committed{"t": {0: {Offset: int64(i)}}})
	}
	want := []string{"offsets.log.tmp", "dir renamed=true", "offsets.log.tmp", "dir renamed=true"}
	if fmt.Sprint(*ops) != fmt.Sprint(want) {
		t.Fatalf("fsyncs %q, want %q", *ops, want)
	}
}

// With flush: always, a commit after a compaction whose directory fsync failed is
// refused until that fsync succeeds; appends go to the new offsets.log, not to the old
// file the rename unlinked.
func TestOffsetsLogDirSyncFailureRefusesCommits(t *testing.T) {
	defer func(n int) { compactMinLines = n }(compactMinLines)
	compactMinLines = 10
	failDir := false
	recordSyncs(t, &failDir)
	c, _ := newTest(t)
	o := c.opts
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	o.Sync = true
	c = reopen(t, o)
	commit := func(off int64) int16 {
		return c.Commit("g", "", -1, map[string]map[int32]Committed{"t": {0: {Offset: off}}})
	}
	failDir = true
	last := int64(-1)
	for i := range int64(11) { // the 11th commit compacts; it was written before
		if code := commit(i); code != 0 {
			t.Fatalf("commit %d: %d", i, code)
		}
		last = i
	}
	if code := commit(100); code != kerr.KafkaStorageError.Code {
		t.Fatalf("commit with the compaction's rename not durable: code %d, want KAFKA_STORAGE_ERROR", code)
	}
	failDir = false
	if code := commit(101); code != 0 {
		t.Fatalf("commit once the directory syncs: %d", code)
	}
	last = 101
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := reopen(t, o).Fetch("g")["t"][0].Offset; got != last {
		t.Fatalf("offset after reopen %d, want %d", got, last)
	}
}

// A coordinator that makes its directory syncs the parent, so that the directory's name
// (and offsets.log with it) survives a power cut: offsets.log's own fsyncs and the
// compaction's directory fsync cover only the entries inside it.
func TestOffsetsDirCreationSynced(t *testing.T) {
	var dirs []string
	orig := syncFile
	syncFile = func(f *os.File) error {
		if st, err := f.Stat(); err == nil && st.IsDir() {
			dirs = append(dirs, filepath.Clean(f.Name()))
		}
		return orig(f)
	}
	t.Cleanup(func() { syncFile = orig })
	o := DefaultOptions()
	o.Dir = filepath.Join(t.TempDir(), "__consumer_offsets")
	o.Tick = time.Hour
	reopen(t, o)
	if !slices.Contains(dirs, filepath.Dir(o.Dir)) {
		t.Fatalf("synced directories %q, want the parent of %q", dirs, o.Dir)
	}
}
