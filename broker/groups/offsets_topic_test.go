package groups

import (
	"math"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// javaHashCode is Java's String.hashCode, computed over the UTF-16 code units.
func javaHashCode(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return h
}

func TestPartitionForIsKafkas(t *testing.T) {
	// Known values of Java's "…".hashCode(): "hello" is 99162322 (% 50 = 22);
	// "polygenelubricants" is Integer.MIN_VALUE, which Kafka's Utils.abs maps to 0.
	if got := PartitionFor("hello", 50); got != 22 {
		t.Errorf("hello: %d, want 22", got)
	}
	if javaHashCode("polygenelubricants") != math.MinInt32 {
		t.Fatal("BUG: the test's hashCode is not Java's")
	}
	if got := PartitionFor("polygenelubricants", 50); got != 0 {
		t.Errorf("polygenelubricants: %d, want 0", got)
	}
	// Negative hash codes, non-ASCII and characters outside the BMP (surrogate pairs).
	for _, g := range []string{"", "console-consumer-12345", "groupe-é", "组-消费者", "emoji-😀-group", "a very long group id that overflows many times over"} {
		for _, n := range []int32{1, 3, 50} {
			h := javaHashCode(g)
			if h < 0 && h != math.MinInt32 {
				h = -h
			} else if h == math.MinInt32 {
				h = 0
			}
			if got := PartitionFor(g, n); got != h%n {
				t.Errorf("%q over %d: %d, want %d", g, n, got, h%n)
			}
		}
	}
}

// A group known only from offsets.log after a restart gets back what its latest
// metadata record in __consumer_offsets says, as Kafka's coordinator loads it: the
// protocol type (ListGroups showed an empty PROTOCOL-TYPE after a restart), the
// generation (a rejoin continues it), and, for a group that was Empty already, when it
// became Empty, which its offsets' expiry counts from.
func TestReconcileRestoresGroupMetadata(t *testing.T) {
	c, clk := newTest(t)
	offs := map[string]map[int32]Committed{"t": {0: {Offset: 5}}}
	for _, g := range []string{"was-empty", "had-members", "no-record"} {
		if code := c.Commit(g, "", -1, offs); code != 0 {
			t.Fatalf("commit %s: %d", g, code)
		}
	}
	o := c.opts
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	start := clk.now()
	c = reopen(t, o)

	emptied := start.Add(-30 * time.Minute)
	wasEmpty := kmsg.NewGroupMetadataValue()
	wasEmpty.Version, wasEmpty.ProtocolType, wasEmpty.Generation = 3, "consumer", 4
	wasEmpty.CurrentStateTimestamp = emptied.UnixMilli()
	hadMembers := kmsg.NewGroupMetadataValue()
	hadMembers.Version, hadMembers.ProtocolType, hadMembers.Generation = 3, "consumer", 2
	p, l := "range", "m-1"
	hadMembers.Protocol, hadMembers.Leader = &p, &l
	hadMembers.CurrentStateTimestamp = emptied.UnixMilli()
	m := kmsg.NewGroupMetadataValueMember()
	m.MemberID, m.ClientID, m.ClientHost = "m-1", "cl", "/127.0.0.1"
	hadMembers.Members = append(hadMembers.Members, m)
	latest := map[string][]byte{
		string(GroupKey("was-empty")):   wasEmpty.AppendTo(nil),
		string(GroupKey("had-members")): hadMembers.AppendTo(nil),
	}
	for _, g := range []string{"was-empty", "had-members", "no-record"} {
		latest[string(OffsetKey(g, "t", 0))] = offsetValue(c.Fetch(g)["t"][0])
	}
	fixes := c.Reconcile(latest)
	if len(fixes) != 1 || fixes[0].Group != "had-members" {
		t.Fatalf("fixes %+v, want had-members' Empty record", fixes)
	}
	for _, tc := range []struct {
		group, protocolType string
		generation          int32
	}{{"was-empty", "consumer", 4}, {"had-members", "consumer", 3}, {"no-record", "", 0}} {
		gi, ok := c.Describe(tc.group)
		if !ok || gi.State != "Empty" || gi.ProtocolType != tc.protocolType || gi.Generation != tc.generation {
			t.Errorf("%s after the restart: %+v, want Empty, protocol type %q, generation %d", tc.group, gi, tc.protocolType, tc.generation)
		}
	}
	for _, gi := range c.List() {
		if gi.Name == "was-empty" && gi.ProtocolType != "consumer" {
			t.Errorf("List: %+v", gi)
		}
	}

	// was-empty became Empty 30 minutes before the start: its offsets expire retention
	// after that; the others' retention counts from the start.
	clk.add(o.OffsetsRetention - 29*time.Minute)
	c.expire()
	if len(c.Fetch("was-empty")) != 0 {
		t.Error("was-empty's offsets outlived retention since it became Empty")
	}
	if len(c.Fetch("had-members")) != 1 || len(c.Fetch("no-record")) != 1 {
		t.Error("offsets of groups Empty since the start expired before retention")
	}

	// A member joining had-members starts generation 4, after the restored 3.
	r := recv(t, joinAsync(c, joinReq(9, "had-members", "", "range")))
	r = recv(t, joinAsync(c, joinReq(9, "had-members", r.MemberID, "range")))
	if r.ErrorCode != 0 || r.Generation != 4 {
		t.Fatalf("rejoin: error %d generation %d, want generation 4", r.ErrorCode, r.Generation)
	}
}

// FormatRecord prints Kafka's formatter lines: each formatter its own record type,
// "NULL" for a tombstone, bytes in base64, names as written.
func TestFormatRecord(t *testing.T) {
	commit := offsetValue(Committed{Offset: 42, LeaderEpoch: 3, Metadata: "m<&>", CommitMs: 1700000000000})
	gv := kmsg.NewGroupMetadataValue()
	gv.Version, gv.ProtocolType, gv.Generation, gv.CurrentStateTimestamp = 3, "consumer", 2, 1700000000001
	p, l := "range", "m1"
	gv.Protocol, gv.Leader = &p, &l
	m := kmsg.NewGroupMetadataValueMember()
	m.MemberID, m.ClientID, m.ClientHost, m.RebalanceTimeoutMillis, m.SessionTimeoutMillis = "m1", "c", "/127.0.0.1", 60000, 45000
	m.Subscription, m.Assignment = []byte{0, 1}, []byte{}
	gv.Members = append(gv.Members, m)
	for _, tc := range []struct {
		f          Formatter
		key, value []byte
		want       string
	}{
		{FormatOffsets, OffsetKey("g", "t", 1), commit,
			`{"key":{"type":1,"data":{"group":"g","topic":"t","partition":1}},"value":{"version":3,"data":{"offset":42,"leaderEpoch":3,"metadata":"m<&>","commitTimestamp":1700000000000}}}`},
		{FormatOffsets, OffsetKey("g", "t", 1), nil,
			`{"key":{"type":1,"data":{"group":"g","topic":"t","partition":1}},"value":"NULL"}`},
		{FormatOffsets, GroupKey("g"), gv.AppendTo(nil), ""},
		{FormatGroupMetadata, GroupKey("g"), gv.AppendTo(nil),
			`{"key":{"type":2,"data":{"group":"g"}},"value":{"version":3,"data":{"protocolType":"consumer","generation":2,"protocol":"range","leader":"m1","currentStateTimestamp":1700000000001,"members":[{"memberId":"m1","groupInstanceId":null,"clientId":"c","clientHost":"/127.0.0.1","rebalanceTimeout":60000,"sessionTimeout":45000,"subscription":"AAE=","assignment":""}]}}}`},
		{FormatGroupMetadata, GroupKey("g"), nil, `{"key":{"type":2,"data":{"group":"g"}},"value":"NULL"}`},
		{FormatGroupMetadata, OffsetKey("g", "t", 1), commit, ""},
		{FormatOffsets, []byte{0}, nil, ""},
	} {
		got, ok := FormatRecord(tc.f, tc.key, tc.value)
		if ok != (tc.want != "") || string(got) != tc.want {
			t.Errorf("formatter %d, key %x:\n got %s (%v)\nwant %s", tc.f, tc.key, got, ok, tc.want)
		}
	}
}
