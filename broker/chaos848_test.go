package broker

// KIP-848 consumer groups under TestChaos: franz-go consumers with the server-side
// balancer (sticky → "uniform", range → "range") join and leave two consumer groups —
// Close (epoch -1) and clients simply taken off the network, which the short session
// timeout fences — while the admin adds partitions, deletes and creates the topics they
// subscribe to (by name and by regex), deletes their offsets and groups, and the members
// commit while they rebalance; some are static, some revoke past their rebalance
// timeout. A third group is played through raw ConsumerGroupHeartbeats (rawConsumers):
// wrong and previous epochs, static leaves (-2) and instances coming back, members
// abandoned to their session timeout. What must hold: no two members of a group ever
// own one partition (the members' assignment callbacks and leave heartbeats, stamped by
// one clock; the coordinator's ConsumerGroupDescribe sampled during the run; each raw
// assignment against what the other raw members may still hold), the admin, commit and
// heartbeat errors are the ones Kafka gives, and after the load each group is Stable
// (every partition of what its members subscribe to assigned) or Empty.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	chaosNamed = "chaos-k1" // members subscribe chaos-a and chaos-s1 by name, some add chaos-s0; sticky and range, static or not
	chaosRegex = "chaos-k2" // members subscribe the regex chaos-s.*; range
)

// chaos848Subscribed reports whether group's members may subscribe to topic.
func chaos848Subscribed(group, topic string) bool {
	if group == chaosNamed {
		return topic == chaosTracked || topic == "chaos-s1" || topic == "chaos-s0"
	}
	return regexp.MustCompile(`^chaos-s.*$`).MatchString(topic)
}

// ownEvent is one change of a member's ownership, at seq on the run's one clock.
type ownEvent struct {
	seq           int64
	group, member string
	topic         string
	partition     int32
	kind          byte // 'a' assigned, 'r' revoked, 'l' lost (or revoked too late), 'x' left, 'c' cut off the network
}

// chaos848 runs the consumer-group members and records what they own.
type chaos848 struct {
	r       *chaosRun
	clock   atomic.Int64
	samples atomic.Int64 // descriptions of a group with two members or more

	mu      sync.Mutex
	events  []ownEvent
	owned   map[string]map[string]map[int32]bool // member → topic → partitions, as its callbacks say
	cut     map[string]bool                      // cut off the network
	left    map[string]bool                      // its leave heartbeat went out
	members []*chaosMember                       // all ever started
	next    int
	lost    int // partitions lost (fenced members) or revoked too slowly: their end is not known
	// instances are the static members' instance ids free to start a member with; one
	// whose member was cut off is not used again (its client still runs).
	instances []string
	commits   map[string]int // commit outcomes by error
	// deletions of each topic: the clock before the request and after its response,
	// between which the topic went.
	deletions map[string][][2]int64
	// ids are the member ids each member's heartbeats carried; fences, the ones the
	// coordinator fenced.
	ids    map[string]map[string]bool
	fences *fenceLog
}

// fenceLog notes the members the coordinator fences (session or rebalance timeout), as
// the broker logs them.
type fenceLog struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (f *fenceLog) has(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ids[id]
}

// fenceHandler passes the broker's log on and notes the fences in it.
type fenceHandler struct {
	slog.Handler
	f *fenceLog
}

func (h fenceHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h fenceHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "member session expired" || strings.HasPrefix(r.Message, "member fenced") {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "member" {
				h.f.mu.Lock()
				h.f.ids[a.Value.String()] = true
				h.f.mu.Unlock()
				return false
			}
			return true
		})
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h fenceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return fenceHandler{h.Handler.WithAttrs(as), h.f}
}

func (h fenceHandler) WithGroup(name string) slog.Handler {
	return fenceHandler{h.Handler.WithGroup(name), h.f}
}

type chaosMember struct {
	name, group string
	cl          *kgo.Client
	d           *cutDialer
	done        chan struct{}
	instance    string // a static member's instance id
	gone        bool   // closed or cut: not picked again
}

func newChaos848(r *chaosRun, fences *fenceLog) *chaos848 {
	return &chaos848{r: r, fences: fences, ids: map[string]map[string]bool{}, owned: map[string]map[string]map[int32]bool{}, cut: map[string]bool{}, left: map[string]bool{}, deletions: map[string][][2]int64{}, commits: map[string]int{}}
}

// record stamps the callbacks' view; a member cut off the network owns nothing after
// the cut, whatever its callbacks say later.
func (k *chaos848) record(m *chaosMember, kind byte, ps map[string][]int32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cut[m.name] || k.left[m.name] {
		return
	}
	own := k.owned[m.name]
	if own == nil {
		own = map[string]map[int32]bool{}
		k.owned[m.name] = own
	}
	for _, t := range slices.Sorted(mapKeys(ps)) {
		for _, p := range ps[t] {
			if own[t] == nil {
				own[t] = map[int32]bool{}
			}
			switch {
			case kind == 'a' && !own[t][p]:
				own[t][p] = true
			case kind != 'a' && own[t][p]:
				delete(own[t], p)
				if kind == 'l' {
					k.lost++
				}
			default:
				continue
			}
			k.events = append(k.events, ownEvent{seq: k.clock.Add(1), group: m.group, member: m.name, topic: t, partition: p, kind: kind})
		}
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// cutOff takes m off the network: its partitions end now, as far as the check goes
// (it can no longer fetch or commit); the coordinator fences it after its session
// timeout.
func (k *chaos848) cutOff(m *chaosMember) {
	k.mu.Lock()
	k.cut[m.name] = true
	for _, t := range slices.Sorted(mapKeys(k.owned[m.name])) {
		for _, p := range slices.Sorted(mapKeys32(k.owned[m.name][t])) {
			k.events = append(k.events, ownEvent{seq: k.clock.Add(1), group: m.group, member: m.name, topic: t, partition: p, kind: 'c'})
		}
	}
	delete(k.owned, m.name)
	k.mu.Unlock()
	m.d.cutNow()
}

// heartbeat sees m's ConsumerGroupHeartbeat go out. A leave (epoch -1) ends what m
// owns: from then on the coordinator may give its partitions to others, and franz-go
// does not always call OnPartitionsRevoked first (a Close that interrupts a revocation
// skips it for the partitions being revoked); what its callbacks say after is not
// ownership, until it joins again (epoch 0).
func (k *chaos848) heartbeat(m *chaosMember, memberID string, epoch int32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ids[m.name] == nil {
		k.ids[m.name] = map[string]bool{}
	}
	k.ids[m.name][memberID] = true
	if k.cut[m.name] {
		return
	}
	if epoch == 0 {
		k.left[m.name] = false
		return
	}
	if epoch > 0 {
		return
	}
	k.left[m.name] = true
	for _, t := range slices.Sorted(mapKeys(k.owned[m.name])) {
		for _, p := range slices.Sorted(mapKeys32(k.owned[m.name][t])) {
			k.events = append(k.events, ownEvent{seq: k.clock.Add(1), group: m.group, member: m.name, topic: t, partition: p, kind: 'x'})
		}
	}
	delete(k.owned, m.name)
}

// hbConn tells heartbeat of each ConsumerGroupHeartbeat request before writing it
// (franz-go writes each request in one Write).
type hbConn struct {
	net.Conn
	heartbeat func(memberID string, epoch int32)
}

func (c *hbConn) Write(b []byte) (int, error) {
	if len(b) > 14 && binary.BigEndian.Uint16(b[4:]) == 68 {
		version := int16(binary.BigEndian.Uint16(b[6:]))
		body := b[12:]
		if n := int16(binary.BigEndian.Uint16(body)); n > 0 { // client id
			body = body[2+int(n):]
		} else {
			body = body[2:]
		}
		body = body[1:] // no tagged fields in the header
		req := kmsg.ConsumerGroupHeartbeatRequest{Version: version}
		if err := req.ReadFrom(body); err == nil {
			c.heartbeat(req.MemberID, req.MemberEpoch)
		}
	}
	return c.Conn.Write(b)
}

func mapKeys32(m map[int32]bool) func(func(int32) bool) {
	return func(yield func(int32) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// deleteTopic deletes topic, noting when on the clock.
func (k *chaos848) deleteTopic(ctx context.Context, adm *kadm.Client, topic string) {
	before := k.clock.Add(1)
	_, _ = adm.DeleteTopics(ctx, topic)
	after := k.clock.Add(1)
	k.mu.Lock()
	k.deletions[topic] = append(k.deletions[topic], [2]int64{before, after})
	k.mu.Unlock()
}

// recreated reports whether topic was deleted after start and before end: what was
// owned from start and what was owned until end are of different topics (topic ids) of
// that name.
func (k *chaos848) recreated(topic string, start, end int64) bool {
	for _, d := range k.deletions[topic] {
		if start < d[1] && d[0] < end {
			return true
		}
	}
	return false
}

// commitCodes are the errors a commit of a consumer-group member may get while its
// group rebalances and its topics are deleted under it.
var commitCodes = map[int16]bool{
	0:                                   true,
	kerr.StaleMemberEpoch.Code:          true, // the member must heartbeat first
	kerr.UnknownMemberID.Code:           true, // fenced, or its group deleted and made again
	kerr.UnknownTopicOrPartition.Code:   true, // the topic was deleted
	kerr.CoordinatorLoadInProgress.Code: true,
	kerr.CoordinatorNotAvailable.Code:   true,
	kerr.NotCoordinator.Code:            true,
	kerr.RequestTimedOut.Code:           true,
	// franz-go's own answers: a topic whose id changed (deleted and made again) is not
	// sent, a commit cut short by a rebalance is not either.
	kerr.UnknownTopicID.Code:      true,
	kerr.RebalanceInProgress.Code: true,
}

// commitDone tallies a commit's outcome and fails on an error Kafka would not give.
func (k *chaos848) commitDone(who string, resp *kmsg.OffsetCommitResponse, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		k.commits["request: "+err.Error()]++
		return
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			name := "OK"
			if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
				name = e.Error()
			}
			k.commits[name]++
			if !commitCodes[p.ErrorCode] {
				k.r.fail("848 %s: commit of %s-%d: %v", who, t.Topic, p.Partition, kerr.ErrorForCode(p.ErrorCode))
			}
		}
	}
}

// start adds a member to group; the named group's members pick sticky or range, so
// that the assignor the group uses changes with its membership, and some are static
// (an instance id, used again by a later member once its member is closed). franz-go
// (v1.22.3) sends a static member's leave (-2) without the instance id, which Kafka
// and the broker refuse ("InstanceId can't be null."): the instance's next member gets
// UNRELEASED_INSTANCE_ID until the session of the one closed runs out. The raw group
// (rawConsumers) takes the -2 path.
func (k *chaos848) start(group string, rng *rand.Rand) {
	// Some members of the regex group take longer to revoke than their rebalance timeout;
	// one at a time, as two would fence each other for ever: each joining makes the
	// other revoke.
	slow := group == chaosRegex && rng.IntN(4) == 0 && !k.slowLive()
	rebalance := 10 * time.Second
	k.mu.Lock()
	k.next++
	m := &chaosMember{name: fmt.Sprintf("%s-m%02d", group, k.next), group: group, d: &cutDialer{}, done: make(chan struct{})}
	if group == chaosNamed && len(k.instances) > 0 && rng.IntN(2) == 0 {
		m.instance, k.instances = k.instances[0], k.instances[1:]
		m.name += "-" + m.instance
	}
	if slow {
		rebalance = 150 * time.Millisecond
		m.name += "-slow"
	}
	k.members = append(k.members, m)
	k.mu.Unlock()
	bal := kgo.RangeBalancer()
	if group == chaosNamed && rng.IntN(3) != 0 {
		bal = kgo.StickyBalancer()
	}
	dial := func(ctx context.Context, network, host string) (net.Conn, error) {
		c, err := m.d.dial(ctx, network, host)
		if err != nil {
			return nil, err
		}
		return &hbConn{Conn: c, heartbeat: func(id string, epoch int32) { k.heartbeat(m, id, epoch) }}, nil
	}
	opts := []kgo.Opt{kgo.SeedBrokers(k.r.addr), kgo.Dialer(dial), kgo.ClientID(m.name),
		kgo.ConsumerGroup(group), kgo.ServerSideBalancer(), kgo.Balancers(bal),
		kgo.AutoCommitInterval(100 * time.Millisecond), kgo.RebalanceTimeout(rebalance),
		kgo.AutoCommitCallback(func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			k.commitDone(m.name+" autocommit", resp, err)
		}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50 * time.Millisecond), kgo.FetchMaxBytes(64 << 10),
		kgo.MetadataMinAge(20 * time.Millisecond), kgo.MetadataMaxAge(200 * time.Millisecond),
		kgo.RetryTimeout(2 * time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) { k.record(m, 'a', a) }),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
			if slow {
				// Past its rebalance timeout: the coordinator fences the member and
				// gives the partitions to others while it is here, so when it let
				// them go is not known.
				time.Sleep(400 * time.Millisecond)
				k.record(m, 'l', r)
				return
			}
			// What was polled is committed before the partitions go, racing the
			// rebalance that takes them.
			cl.CommitOffsetsSync(ctx, cl.UncommittedOffsets(), func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
				if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed)) {
					return
				}
				k.commitDone(m.name+" on revoke", resp, err)
			})
			k.record(m, 'r', r)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) { k.record(m, 'l', l) }),
	}
	if os.Getenv("TAGPIPE_CHAOS_LOG") != "" { // the members' own logs, for a failure's story
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, func() string { return m.name + " " })))
	}
	if m.instance != "" {
		opts = append(opts, kgo.InstanceID(m.instance))
	}
	if group == chaosNamed {
		opts = append(opts, kgo.ConsumeTopics(chaosTracked, "chaos-s1"))
	} else {
		opts = append(opts, kgo.ConsumeTopics("chaos-s.*"), kgo.ConsumeRegex())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		k.r.fail("848 %s: %v", m.name, err)
		close(m.done)
		return
	}
	m.cl = cl
	go func() {
		defer close(m.done)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			fs := cl.PollFetches(ctx)
			cancel()
			if fs.IsClientClosed() {
				return
			}
		}
	}()
}

// slowLive reports whether a member slow to revoke is in (not closed or cut off).
func (k *chaos848) slowLive() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.ContainsFunc(k.members, func(m *chaosMember) bool {
		return strings.HasSuffix(m.name, "-slow") && !m.gone
	})
}

// pick is a live member (of group, "" any), nil if none.
func (k *chaos848) pick(group string, rng *rand.Rand) *chaosMember {
	k.mu.Lock()
	defer k.mu.Unlock()
	var live []*chaosMember
	for _, m := range k.members {
		if !m.gone && m.cl != nil && (group == "" || m.group == group) {
			live = append(live, m)
		}
	}
	if len(live) == 0 {
		return nil
	}
	m := live[rng.IntN(len(live))]
	return m
}

func (k *chaos848) live(group string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, m := range k.members {
		if !m.gone && m.cl != nil && m.group == group {
			n++
		}
	}
	return n
}

// markGone takes m out of the picks; a closed static member's instance id is free
// again.
func (k *chaos848) markGone(m *chaosMember, closed bool) {
	k.mu.Lock()
	m.gone = true
	if m.instance != "" && closed {
		k.instances = append(k.instances, m.instance)
	}
	k.mu.Unlock()
}

// worker starts, closes and cuts members, commits from them, deletes their groups and
// offsets, grows, deletes and creates the topics they subscribe to, and samples the
// coordinator's view of the groups.
func (k *chaos848) worker(ctx context.Context) func(int) {
	return func(seed int) {
		rng := rand.New(rand.NewPCG(uint64(seed), 37))
		cl, err := kgo.NewClient(kgo.SeedBrokers(k.r.addr), kgo.RetryTimeout(2*time.Second))
		if err != nil {
			k.r.fail("848 admin: %v", err)
			return
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		groups := []string{chaosNamed, chaosRegex}
		k.instances = []string{"i0", "i1"}
		for _, g := range groups {
			k.start(g, rng)
		}
		for range k.r.ops * 2 {
			if ctx.Err() != nil {
				return
			}
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			g := groups[rng.IntN(2)]
			switch rng.IntN(12) {
			case 0, 1:
				if k.live(g) < 4 {
					k.start(g, rng)
				}
			case 2:
				if m := k.pick(g, rng); m != nil {
					m.cl.Close() // leaves: epoch -1 (-2, refused, for a static member: see start)
					k.markGone(m, true)
				}
			case 3:
				if m := k.pick(g, rng); m != nil && rng.IntN(2) == 0 {
					k.markGone(m, false)
					k.cutOff(m) // fenced by its session timeout
				} else if m := k.pick(chaosNamed, rng); m != nil {
					m.cl.AddConsumeTopics("chaos-s0") // a subscription that changes
				}
			case 4:
				if m := k.pick(g, rng); m != nil {
					m.cl.CommitOffsetsSync(actx, m.cl.UncommittedOffsets(), func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
						if err != nil && errors.Is(err, context.DeadlineExceeded) {
							return
						}
						k.commitDone(m.name+" commit", resp, err)
					})
				}
			case 5:
				if rng.IntN(2) == 0 {
					k.deleteGroup(actx, adm, g)
				} else {
					k.adminCommit(actx, adm, g, rng)
				}
			case 6:
				k.deleteOffsets(actx, adm, g, rng)
			case 7:
				topic := []string{"chaos-s0", "chaos-s1", "chaos-s2"}[rng.IntN(3)]
				switch rng.IntN(3) {
				case 0:
					_, _ = adm.CreatePartitions(actx, 1, topic)
				case 1:
					k.deleteTopic(actx, adm, topic)
				case 2:
					_, _ = adm.CreateTopic(actx, int32(1+rng.IntN(3)), 1, nil, topic)
				}
			default:
				k.sample(actx, cl)
			}
			cancel()
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond) // rebalances get to move between operations
		}
	}
}

// deleteGroup deletes a consumer group: NON_EMPTY_GROUP while it has members,
// GROUP_ID_NOT_FOUND once deleted.
func (k *chaos848) deleteGroup(ctx context.Context, adm *kadm.Client, g string) {
	resp, err := adm.DeleteGroups(ctx, g)
	if err != nil {
		return // the request did not make it
	}
	for _, r := range resp {
		if r.Err != nil && !errors.Is(r.Err, kerr.NonEmptyGroup) && !errors.Is(r.Err, kerr.GroupIDNotFound) {
			k.r.fail("848 DeleteGroups %s: %v", g, r.Err)
		}
	}
}

// adminCommit commits as the admin does (no member, epoch -1): taken while the group
// has no members, else UNKNOWN_MEMBER_ID.
func (k *chaos848) adminCommit(ctx context.Context, adm *kadm.Client, g string, rng *rand.Rand) {
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: chaosTracked, Partition: int32(rng.IntN(3)), At: rng.Int64N(50)})
	resp, err := adm.CommitOffsets(ctx, g, offs)
	if err != nil {
		if errors.Is(err, kerr.UnknownMemberID) {
			return
		}
		var ke *kerr.Error
		if errors.As(err, &ke) {
			k.r.fail("848 admin commit to %s: %v", g, err)
		}
		return
	}
	resp.Each(func(r kadm.OffsetResponse) {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownMemberID) && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			k.r.fail("848 admin commit to %s: %s-%d: %v", g, r.Topic, r.Partition, r.Err)
		}
	})
}

// deleteOffsets deletes a group's offsets of a topic its members subscribe to (refused
// while a member does: GROUP_SUBSCRIBED_TO_TOPIC) or of one none does (chaos-b: never
// refused so).
func (k *chaos848) deleteOffsets(ctx context.Context, adm *kadm.Client, g string, rng *rand.Rand) {
	topic := []string{chaosTracked, chaosValues, "chaos-s0", "chaos-s1"}[rng.IntN(4)]
	resp, err := adm.DeleteOffsets(ctx, g, kadm.TopicsSet{topic: {0: {}}})
	var ke *kerr.Error
	if err != nil {
		if errors.As(err, &ke) && ke != kerr.GroupIDNotFound {
			k.r.fail("848 DeleteOffsets %s %s: %v", g, topic, err)
		}
		return
	}
	for t, ps := range resp {
		for p, err := range ps {
			switch {
			case err == nil, errors.Is(err, kerr.UnknownTopicOrPartition):
			case errors.Is(err, kerr.GroupSubscribedToTopic):
				if !chaos848Subscribed(g, t) {
					k.r.fail("848 DeleteOffsets %s %s-%d: %v, a topic no member subscribes to", g, t, p, err)
				}
			default:
				k.r.fail("848 DeleteOffsets %s %s-%d: %v", g, t, p, err)
			}
		}
	}
}

// sample describes both groups (ConsumerGroupDescribe, the coordinator's view at one
// moment): no partition is in two members' assignments.
func (k *chaos848) sample(ctx context.Context, cl *kgo.Client) {
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{chaosNamed, chaosRegex, "chaos-k3"}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return
	}
	for _, g := range resp.Groups {
		if g.ErrorCode != 0 {
			if g.ErrorCode != kerr.GroupIDNotFound.Code {
				k.r.fail("848 describe %s: %v", g.Group, kerr.ErrorForCode(g.ErrorCode))
			}
			continue
		}
		if msg := describedOverlap(g); msg != "" {
			k.r.fail("848 describe %s (epoch %d): %s", g.Group, g.Epoch, msg)
		}
		if len(g.Members) > 1 {
			k.samples.Add(1)
		}
	}
}

// describedOverlap names a partition two members of g are assigned, "" if none is.
func describedOverlap(g kmsg.ConsumerGroupDescribeResponseGroup) string {
	owner := map[tpKeyT]string{}
	for _, m := range g.Members {
		for _, t := range m.Assignment.TopicPartitions {
			for _, p := range t.Partitions {
				k := tpKeyT{t.TopicID, p}
				if o, ok := owner[k]; ok {
					return fmt.Sprintf("%s(%x)-%d assigned to %s and %s", t.Topic, t.TopicID[:4], p, o, m.MemberID)
				}
				owner[k] = m.MemberID
			}
		}
	}
	return ""
}

type tpKeyT struct {
	id [16]byte
	p  int32
}

// settle waits, once the load is over, until each group is Empty or Stable with every
// partition of what its members subscribe to assigned to exactly one member.
func (k *chaos848) settle(t *testing.T, ctx context.Context, cl *kgo.Client, adm *kadm.Client) {
	t.Helper()
	// franz-go joins with a regex only once it matches a topic: one is there at the end.
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "chaos-s2"); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Errorf("create chaos-s2: %v", err)
	}
	var why string
	ok := false
	deadline := time.Now().Add(60 * time.Second)
	for !ok && time.Now().Before(deadline) {
		why, ok = k.settled(ctx, cl, adm)
		if !ok {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !ok {
		t.Errorf("848 groups did not settle: %s", why)
	}
}

func (k *chaos848) settled(ctx context.Context, cl *kgo.Client, adm *kadm.Client) (string, bool) {
	md, err := adm.Metadata(ctx)
	if err != nil {
		return err.Error(), false
	}
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{chaosNamed, chaosRegex, "chaos-k3"}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err.Error(), false
	}
	for _, g := range resp.Groups {
		if g.ErrorCode == kerr.GroupIDNotFound.Code {
			if n := k.live(g.Group); n > 0 {
				return fmt.Sprintf("%s: not found with %d live members", g.Group, n), false
			}
			continue
		}
		if g.ErrorCode != 0 {
			return fmt.Sprintf("%s: %v", g.Group, kerr.ErrorForCode(g.ErrorCode)), false
		}
		if n := k.live(g.Group); len(g.Members) != n {
			return fmt.Sprintf("%s: %d members, %d live (state %s)", g.Group, len(g.Members), n, g.State), false
		}
		if len(g.Members) == 0 {
			if g.State != "Empty" {
				return fmt.Sprintf("%s: no members, state %s", g.Group, g.State), false
			}
			continue
		}
		if g.State != "Stable" {
			return fmt.Sprintf("%s: state %s (epoch %d, assignment epoch %d)", g.Group, g.State, g.Epoch, g.AssignmentEpoch), false
		}
		if msg := describedOverlap(g); msg != "" {
			k.r.fail("848 %s after the load: %s", g.Group, msg)
			return msg, false
		}
		assigned := map[tpKeyT]bool{}
		names := map[string]bool{}
		var res []*regexp.Regexp
		for _, m := range g.Members {
			for _, t := range m.SubscribedTopics {
				names[t] = true
			}
			if m.SubscribedTopicRegex != nil && *m.SubscribedTopicRegex != "" {
				res = append(res, regexp.MustCompile("^(?:"+*m.SubscribedTopicRegex+")$"))
			}
		}
		subscribed := func(topic string) bool {
			return names[topic] || slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(topic) })
		}
		for _, m := range g.Members {
			if m.MemberEpoch != g.Epoch {
				return fmt.Sprintf("%s: member %s at epoch %d, group %d", g.Group, m.MemberID, m.MemberEpoch, g.Epoch), false
			}
			for _, tp := range m.Assignment.TopicPartitions {
				for _, p := range tp.Partitions {
					assigned[tpKeyT{tp.TopicID, p}] = true
				}
			}
		}
		want := 0
		for _, td := range md.Topics.Sorted() {
			if td.Err != nil || !subscribed(td.Topic) {
				continue
			}
			for p := range td.Partitions {
				want++
				if !assigned[tpKeyT{td.ID, p}] {
					return fmt.Sprintf("%s: %s-%d not assigned (state %s, epoch %d)", g.Group, td.Topic, p, g.State, g.Epoch), false
				}
			}
		}
		if len(assigned) != want {
			return fmt.Sprintf("%s: %d partitions assigned, %d subscribed", g.Group, len(assigned), want), false
		}
	}
	return "", true
}

// closeAll closes every member (the cut ones too: their clients still run).
func (k *chaos848) closeAll() {
	k.mu.Lock()
	ms := slices.Clone(k.members)
	k.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		if m.cl == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.cl.Close()
			<-m.done
		}()
	}
	wg.Wait()
}

// check finds two members of a group that owned a partition at once, by their
// callbacks: an interval runs from the assignment to its revocation, the leave or the
// cut; one a member lost (fenced by the coordinator) has no known end and is left out,
// as are those of the members the coordinator ever fenced (told late),
// and so are two owners of a topic name deleted and created again in between (the
// callbacks name topics, the coordinator assigns topic ids).
func (k *chaos848) check(t *testing.T) {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	type interval struct {
		member     string
		start, end int64
		endKind    byte
	}
	const open = int64(1) << 62
	by := map[string][]*interval{} // group/topic/partition
	topicOf := map[string]string{}
	cur := map[string]*interval{} // member/topic/partition
	for _, e := range k.events {
		tp := fmt.Sprintf("%s/%s-%d", e.group, e.topic, e.partition)
		topicOf[tp] = e.topic
		mk := e.member + "/" + tp
		if e.kind == 'a' {
			iv := &interval{member: e.member, start: e.seq, end: open}
			cur[mk] = iv
			by[tp] = append(by[tp], iv)
			continue
		}
		if iv := cur[mk]; iv != nil {
			iv.end, iv.endKind = e.seq, e.kind
			delete(cur, mk)
		}
	}
	// A member the coordinator fenced may be told late (an assignment answered before
	// the fence, taken after it), and its callbacks run late: the intervals of a member
	// ever fenced are left out (but for those a cut ended: the session timeout fences
	// the member only after), and those lost.
	fenced := func(iv *interval) bool {
		switch {
		case iv.endKind == 'l':
			return true
		case iv.endKind == 'c' && !strings.HasSuffix(iv.member, "-slow"):
			return false // it ended at the cut, before its session could run out
		}
		for id := range k.ids[iv.member] {
			if k.fences.has(id) {
				return true
			}
		}
		return false
	}
	overlaps, excused := 0, 0 // excused: a later owner fenced, or the topic made again
	for _, tp := range slices.Sorted(mapKeys(by)) {
		ivs := by[tp]
		sort.Slice(ivs, func(i, j int) bool { return ivs[i].start < ivs[j].start })
		for i, a := range ivs {
			if fenced(a) {
				continue // when the coordinator took its partitions is not known
			}
			for _, b := range ivs[i+1:] {
				if b.start >= a.end {
					break
				}
				switch {
				case b.member == a.member:
				case fenced(b) || k.recreated(topicOf[tp], a.start, b.start):
					excused++
				default:
					if overlaps++; overlaps <= 10 {
						t.Errorf("848 %s: owned by %s from %d to %d (%c) and by %s from %d", tp, a.member, a.start, a.end, a.endKind, b.member, b.start)
					}
				}
			}
		}
	}
	var outcomes []string
	for _, name := range slices.Sorted(mapKeys(k.commits)) {
		outcomes = append(outcomes, fmt.Sprintf("%s: %d", name, k.commits[name]))
	}
	nfenced := 0
	for _, m := range k.members {
		if fenced(&interval{member: m.name}) {
			nfenced++
		}
	}
	t.Logf("848: %d members (%d fenced once or more), %d ownership changes, %d partitions lost, %d overlaps excused, %d descriptions of two members or more; commits %s",
		len(k.members), nfenced, len(k.events), k.lost, excused, k.samples.Load(), strings.Join(outcomes, ", "))
}

// chaosSessionTimeout is the brokers' group.consumer.session.timeout.ms in TestChaos.
const chaosSessionTimeout = time.Second

// rawMember is a consumer-group member played through raw ConsumerGroupHeartbeats.
type rawMember struct {
	id, instance string
	epoch, prev  int32           // the member's epoch and the one before it
	owned        map[tpKeyT]bool // as the last assignment said; sent with each heartbeat
	declared     map[tpKeyT]bool // sent in the last heartbeat
	lastOK       time.Time       // when its last heartbeat answered was sent: the coordinator's session runs from after it
	in           bool            // joined, and neither left nor told it is unknown
	abandoned    bool            // never heartbeats again: its session runs out
	staticLeft   bool            // left with epoch -2: its partitions wait for its instance
}

func (m *rawMember) setEpoch(e int32) {
	if e != m.epoch {
		m.prev, m.epoch = m.epoch, e
	}
}

// held is what the coordinator may still count as m's: what it last declared and what
// it was assigned since.
func (m *rawMember) holds(k tpKeyT) bool { return m.declared[k] || m.owned[k] }

// rawConsumers plays members of chaos-k3 through raw ConsumerGroupHeartbeats, in one
// goroutine and in order, so that it knows at every response what each member may still
// hold: joins (names or a regex, either assignor, some static), heartbeats with the
// owned partitions or without them, with the previous or a wrong epoch, leaves (-1),
// static leaves (-2) and the instance back under a new member id, members abandoned to
// their session timeout. A partition the coordinator gives one member while another may
// still hold it (declared it or was given it, did not leave, and its session cannot have
// run out) is a violation; so is an error Kafka would not give.
func (k *chaos848) rawConsumers(ctx context.Context) func(int) {
	return func(seed int) {
		rng := rand.New(rand.NewPCG(uint64(seed), 41))
		var c *chaosConn
		defer func() {
			if c != nil {
				c.nc.Close()
			}
		}()
		var members []*rawMember
		instances := []string{"r0", "r1", "r2"}
		n := 0
		send := func(m *rawMember, req *kmsg.ConsumerGroupHeartbeatRequest) (*kmsg.ConsumerGroupHeartbeatResponse, bool) {
			if c == nil {
				var err error
				if c, err = dialChaos(k.r.addr); err != nil {
					k.r.fail("848 raw: dial: %v", err)
					return nil, false
				}
			}
			req.Version, req.Group, req.MemberID = 1, "chaos-k3", m.id
			if m.instance != "" {
				req.InstanceID = &m.instance
			}
			if req.Topics != nil || req.MemberEpoch <= 0 {
				m.declared = map[tpKeyT]bool{}
				for _, t := range req.Topics {
					for _, p := range t.Partitions {
						m.declared[tpKeyT{t.TopicID, p}] = true
					}
				}
			}
			sent := time.Now()
			resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
			if err := c.roundTrip(req, resp); err != nil {
				c.nc.Close()
				c = nil
				return nil, false // its outcome is unknown: the member is abandoned
			}
			m.lastOK = sent
			return resp, true
		}
		ownedTopics := func(m *rawMember) []kmsg.ConsumerGroupHeartbeatRequestTopic {
			by := map[[16]byte][]int32{}
			for tp := range m.owned {
				by[tp.id] = append(by[tp.id], tp.p)
			}
			out := []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			for id, ps := range by {
				slices.Sort(ps)
				out = append(out, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: id, Partitions: ps})
			}
			return out
		}
		// given checks a response's assignment to m against what the others may hold,
		// then takes it.
		given := func(m *rawMember, a *kmsg.ConsumerGroupHeartbeatResponseAssignment, at time.Time) {
			if a == nil {
				return
			}
			next := map[tpKeyT]bool{}
			for _, t := range a.Topics {
				for _, p := range t.Partitions {
					tp := tpKeyT{t.TopicID, p}
					next[tp] = true
					if m.holds(tp) {
						continue
					}
					for _, o := range members {
						switch {
						case o == m, !o.holds(tp), !o.in && !o.staticLeft && !o.abandoned,
							o.staticLeft && o.instance == m.instance, // the instance's next member takes them over
							at.Sub(o.lastOK) >= chaosSessionTimeout:  // its session may have run out
							continue
						}
						k.r.fail("848 raw: %x-%d given to %s (epoch %d) while %s (in %v, static left %v, abandoned %v, %v since its last heartbeat) may hold it",
							tp.id[:4], tp.p, m.id, m.epoch, o.id, o.in, o.staticLeft, o.abandoned, at.Sub(o.lastOK).Round(time.Millisecond))
					}
				}
			}
			m.owned = next
		}
		gone := func(m *rawMember) {
			m.in = false
			m.owned, m.declared = map[tpKeyT]bool{}, map[tpKeyT]bool{}
		}
		join := func(m *rawMember) {
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.MemberEpoch, req.RebalanceTimeoutMillis = 0, 10000
			req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			if rng.IntN(2) == 0 {
				req.SubscribedTopicNames = []string{chaosTracked, "chaos-s0"}
			} else {
				re := "chaos-s[01]"
				req.SubscribedTopicRegex = &re
			}
			switch rng.IntN(4) {
			case 0:
				req.ServerAssignor = ptr("range")
			case 1:
				req.ServerAssignor = ptr("uniform")
			}
			resp, ok := send(m, req)
			if !ok {
				m.abandoned = true
				return
			}
			switch kerr.ErrorForCode(resp.ErrorCode) {
			case nil:
				m.in, m.staticLeft = true, false
				m.setEpoch(resp.MemberEpoch)
				given(m, resp.Assignment, time.Now())
				for _, o := range members {
					if o != m && o.staticLeft && o.instance == m.instance {
						o.staticLeft = false // replaced: what it had is m's now
						gone(o)
					}
				}
			case kerr.UnreleasedInstanceID: // the instance's member is still in
			default:
				k.r.fail("848 raw: join of %s: %v", m.id, kerr.ErrorForCode(resp.ErrorCode))
			}
		}
		// beat sends m's heartbeat and takes the answer: its epoch and assignment, or m
		// out (UNKNOWN_MEMBER_ID: its session ran out while the worker was slow; or the
		// connection failed and the outcome is unknown); any other error fails.
		beat := func(m *rawMember, req *kmsg.ConsumerGroupHeartbeatRequest, what string) {
			resp, ok := send(m, req)
			switch {
			case !ok:
				m.abandoned = true
			case resp.ErrorCode == 0:
				m.setEpoch(resp.MemberEpoch)
				given(m, resp.Assignment, time.Now())
			case resp.ErrorCode == kerr.UnknownMemberID.Code:
				gone(m)
				m.abandoned = true
			default:
				k.r.fail("848 raw: heartbeat of %s with %s (epoch %d, its epoch %d): %v", m.id, what, req.MemberEpoch, m.epoch, kerr.ErrorForCode(resp.ErrorCode))
			}
		}
		for range k.r.ops * 4 {
			if ctx.Err() != nil {
				return
			}
			var live []*rawMember
			for _, m := range members {
				if m.in && !m.abandoned {
					live = append(live, m)
				}
			}
			// Every live member heartbeats often enough to keep its session.
			for _, m := range live {
				if time.Since(m.lastOK) < chaosSessionTimeout/4 {
					continue
				}
				req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
				req.MemberEpoch, req.RebalanceTimeoutMillis, req.Topics = m.epoch, -1, ownedTopics(m)
				beat(m, req, "what it owns")
			}
			switch rng.IntN(10) {
			case 0, 1:
				if len(live) < 4 {
					n++
					m := &rawMember{id: fmt.Sprintf("raw-%03d", n), owned: map[tpKeyT]bool{}, declared: map[tpKeyT]bool{}}
					if len(instances) > 0 && rng.IntN(2) == 0 {
						m.instance, instances = instances[0], instances[1:]
					}
					members = append(members, m)
					join(m)
					if !m.in && m.instance != "" && !m.abandoned {
						instances = append(instances, m.instance)
					}
				}
			case 2:
				if len(live) > 0 {
					m := live[rng.IntN(len(live))]
					req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
					req.MemberEpoch = -1
					if m.instance != "" && rng.IntN(2) == 0 {
						req.MemberEpoch = -2
					}
					resp, ok := send(m, req)
					switch {
					case !ok:
						m.abandoned = true
					case resp.ErrorCode == kerr.UnknownMemberID.Code:
						gone(m) // its session ran out while the worker was slow
						if m.instance != "" {
							instances = append(instances, m.instance)
						}
					case resp.ErrorCode != 0:
						k.r.fail("848 raw: leave (%d) of %s: %v", req.MemberEpoch, m.id, kerr.ErrorForCode(resp.ErrorCode))
					case req.MemberEpoch == -2:
						// It keeps what it declared for its next member.
						m.in, m.staticLeft = false, true
						m.declared = maps.Clone(m.owned)
						instances = append(instances, m.instance)
					default:
						gone(m)
						if m.instance != "" {
							instances = append(instances, m.instance)
						}
					}
				}
			case 3:
				if len(live) > 0 {
					m := live[rng.IntN(len(live))]
					m.abandoned = true // its instance (if any) is not used again
				}
			case 4:
				// A wrong epoch: FENCED_MEMBER_EPOCH, and the member joins again (epoch
				// 0, same member id), keeping what it had.
				if len(live) > 0 {
					m := live[rng.IntN(len(live))]
					req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
					req.MemberEpoch, req.RebalanceTimeoutMillis = m.epoch+1+int32(rng.IntN(3)), -1
					req.Topics = ownedTopics(m)
					resp, ok := send(m, req)
					switch {
					case !ok:
						m.abandoned = true
					case resp.ErrorCode == kerr.FencedMemberEpoch.Code:
						join(m)
					case resp.ErrorCode == kerr.UnknownMemberID.Code:
						gone(m)
						m.abandoned = true
					default:
						k.r.fail("848 raw: heartbeat of %s at epoch %d (its epoch %d): %v, want FENCED_MEMBER_EPOCH", m.id, req.MemberEpoch, m.epoch, kerr.ErrorForCode(resp.ErrorCode))
					}
				}
			case 5:
				// A heartbeat without the owned partitions (nothing changed).
				if len(live) > 0 {
					m := live[rng.IntN(len(live))]
					req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
					req.MemberEpoch, req.RebalanceTimeoutMillis = m.epoch, -1
					beat(m, req, "no topics")
				}
			case 7:
				// A classic member knocks: INCONSISTENT_GROUP_PROTOCOL while the group has
				// members, else MEMBER_ID_REQUIRED (the join is not followed up).
				if c == nil {
					break
				}
				jg := kmsg.NewPtrJoinGroupRequest()
				jg.Version, jg.Group, jg.ProtocolType = 9, "chaos-k3", "consumer"
				jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis = 1000, 1000
				meta := kmsg.NewConsumerMemberMetadata()
				meta.Topics = []string{chaosTracked}
				pr := kmsg.NewJoinGroupRequestProtocol()
				pr.Name, pr.Metadata = "range", meta.AppendTo(nil)
				jg.Protocols = append(jg.Protocols, pr)
				resp := jg.ResponseKind().(*kmsg.JoinGroupResponse)
				if err := c.roundTrip(jg, resp); err != nil {
					c.nc.Close()
					c = nil
					break
				}
				// A member is surely in if its session cannot have run out by the answer.
				at := time.Now()
				inAny := slices.ContainsFunc(members, func(m *rawMember) bool {
					return (m.in || m.staticLeft) && at.Sub(m.lastOK) < chaosSessionTimeout
				})
				switch {
				case resp.ErrorCode == kerr.InconsistentGroupProtocol.Code:
				case resp.ErrorCode == kerr.MemberIDRequired.Code && !inAny:
				default:
					k.r.fail("848 raw: classic JoinGroup to chaos-k3 (members %v): %v", inAny, kerr.ErrorForCode(resp.ErrorCode))
				}
			case 8:
				// The previous epoch (its response lost, as far as the coordinator
				// knows) with what it owns, all of it assigned: taken (KIP-848); or a
				// new subscription.
				if len(live) == 0 {
					break
				}
				m := live[rng.IntN(len(live))]
				req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
				req.MemberEpoch, req.RebalanceTimeoutMillis, req.Topics = m.epoch, -1, ownedTopics(m)
				what := "a new subscription"
				if m.prev > 0 && rng.IntN(2) == 0 {
					req.MemberEpoch, what = m.prev, "the previous epoch"
				} else if rng.IntN(2) == 0 {
					req.SubscribedTopicNames = [][]string{{chaosTracked}, {chaosTracked, "chaos-s0"}, {"chaos-s1"}}[rng.IntN(3)]
				} else {
					req.SubscribedTopicRegex = ptr([]string{"chaos-s[01]", "chaos-s.*", "chaos-[as].*"}[rng.IntN(3)])
				}
				beat(m, req, what)
			case 6:
				// A static member's instance comes back under a new member id.
				for _, o := range members {
					if o.staticLeft && slices.Contains(instances, o.instance) {
						instances = slices.DeleteFunc(instances, func(s string) bool { return s == o.instance })
						n++
						m := &rawMember{id: fmt.Sprintf("raw-%03d", n), instance: o.instance, owned: map[tpKeyT]bool{}, declared: map[tpKeyT]bool{}}
						members = append(members, m)
						join(m)
						if !m.in && !m.abandoned {
							instances = append(instances, m.instance)
						}
						break
					}
				}
			}
			time.Sleep(time.Duration(rng.IntN(10)) * time.Millisecond)
		}
		// The live members leave: the group ends Empty.
		for _, m := range members {
			if m.in && !m.abandoned {
				req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
				req.MemberEpoch = -1
				_, _ = send(m, req)
			}
		}
	}
}
