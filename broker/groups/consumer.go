package groups

// Consumer groups (KIP-848, group.protocol=consumer): the coordinator assigns the
// partitions itself. A group has an epoch, bumped whenever what the assignment depends
// on changes (a member joins or leaves, a subscription or the assignor changes, a
// subscribed topic is created, deleted or grows); the target assignment is computed by
// the server assignor (assignor.go) for that epoch. Each member reconciles towards its
// target over its heartbeats, as Kafka's CurrentAssignmentBuilder does: partitions it
// must give up are revoked first (it keeps its epoch until its heartbeat no longer lists
// them), and a partition is handed to its new owner only once no other member holds it
// (owners), so no partition is ever owned by two members at once.

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicMeta is what the coordinator needs of a topic to assign its partitions.
type TopicMeta struct {
	Name       string
	ID         [16]byte
	Partitions int32
}

// Kafka's consumer member states (MemberState).
type memberState int8

const (
	memberStable     memberState = iota // reconciled to the target assignment epoch
	memberUnrevoked                     // must revoke partitions before going on
	memberUnreleased                    // waits for partitions other members still hold
)

func (s memberState) String() string {
	return [...]string{"STABLE", "UNREVOKED_PARTITIONS", "UNRELEASED_PARTITIONS"}[s]
}

// Epochs a ConsumerGroupHeartbeat names to leave (Kafka's LEAVE_GROUP_MEMBER_EPOCH and
// LEAVE_GROUP_STATIC_MEMBER_EPOCH).
const (
	leaveEpoch       = -1
	staticLeaveEpoch = -2
)

// The server assignors (group.consumer.assignors); the first is the default.
var serverAssignors = []string{"uniform", "range"}

// parts are partitions by topic id, each list sorted and without duplicates.
type parts map[[16]byte][]int32

func (p parts) has(id [16]byte, n int32) bool {
	_, ok := slices.BinarySearch(p[id], n)
	return ok
}

func (p parts) count() int {
	n := 0
	for _, ps := range p {
		n += len(ps)
	}
	return n
}

func (p parts) equal(o parts) bool {
	if len(p) != len(o) {
		return false
	}
	for id, ps := range p {
		if !slices.Equal(ps, o[id]) {
			return false
		}
	}
	return true
}

func (p parts) add(id [16]byte, n int32) {
	ps := p[id]
	i, ok := slices.BinarySearch(ps, n)
	if !ok {
		p[id] = slices.Insert(ps, i, n)
	}
}

func (p parts) clone() parts {
	out := make(parts, len(p))
	for id, ps := range p {
		out[id] = slices.Clone(ps)
	}
	return out
}

type tpKey struct {
	id [16]byte
	p  int32
}

// cmember is a consumer group member.
type cmember struct {
	id, instanceID, rackID, clientID, clientHost string
	epoch, prevEpoch                             int32
	state                                        memberState
	topics                                       []string // subscribed names, sorted
	regex                                        string   // SubscribedTopicRegex; "" = none
	re                                           *regexp.Regexp
	assignor                                     string // ServerAssignor; "" = the default
	rebalance                                    time.Duration
	// assigned are the partitions the member owns (as the coordinator has told it);
	// revoking those it must give up and may still hold; target its share of the
	// group's target assignment.
	assigned, revoking, target parts
	// since is the member epoch each assigned partition was given at (KIP-1251: a
	// commit with an older epoch is taken for the partitions it already had then).
	since    map[tpKey]int32
	lastSeen time.Time
	revokeBy time.Time // while unrevoked: the rebalance timeout's end
}

// consumerGroup is a group's consumer-protocol state; group.cons is set for them.
type consumerGroup struct {
	epoch       int32 // group epoch
	assignEpoch int32 // epoch of the target assignment
	members     map[string]*cmember
	// owners holds, for every partition a member owns or is revoking, that member.
	owners map[tpKey]string
	// meta is the fingerprint of the subscribed topics' metadata the target was last
	// computed with: a change bumps the epoch.
	meta     string
	assignor string // the assignor of the target assignment
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{members: map[string]*cmember{}, owners: map[tpKey]string{}}
}

// state is Kafka's ConsumerGroupState.
func (cg *consumerGroup) state() string {
	switch {
	case len(cg.members) == 0:
		return "Empty"
	case cg.epoch > cg.assignEpoch:
		return "Assigning"
	}
	for _, m := range cg.members {
		if m.state != memberStable || m.epoch != cg.assignEpoch {
			return "Reconciling"
		}
	}
	return "Stable"
}

func (cg *consumerGroup) staticMember(instanceID string) *cmember {
	for _, m := range cg.members {
		if m.instanceID == instanceID {
			return m
		}
	}
	return nil
}

// preferredAssignor is the server assignor most members ask for (Kafka's
// computePreferredServerAssignor), the default if none asks.
func (cg *consumerGroup) preferredAssignor() string {
	counts := map[string]int{}
	for _, m := range cg.members {
		if m.assignor != "" {
			counts[m.assignor]++
		}
	}
	best, n := serverAssignors[0], 0
	for _, name := range sortedKeys(counts) {
		if counts[name] > n {
			best, n = name, counts[name]
		}
	}
	return best
}

// subscribed reports whether m's subscription takes topic.
func (m *cmember) subscribed(topic string) bool {
	if _, ok := slices.BinarySearch(m.topics, topic); ok {
		return true
	}
	return m.re != nil && m.re.MatchString(topic)
}

// subscribedTopic reports whether a member of the group subscribes to topic (names
// or regex); OffsetDelete refuses such topics.
func (cg *consumerGroup) subscribedTopic(topic string) bool {
	for _, m := range cg.members {
		if m.subscribed(topic) {
			return true
		}
	}
	return false
}

// metaFingerprint is the metadata of every topic a member subscribes to, as one string.
func (cg *consumerGroup) metaFingerprint(topics []TopicMeta) string {
	var b strings.Builder
	for _, t := range topics {
		for _, m := range cg.members {
			if m.subscribed(t.Name) {
				fmt.Fprintf(&b, "%s/%x/%d;", t.Name, t.ID, t.Partitions)
				break
			}
		}
	}
	return b.String()
}

// ConsumerHeartbeatRequest carries a ConsumerGroupHeartbeat and who sent it.
type ConsumerHeartbeatRequest struct {
	Req        *kmsg.ConsumerGroupHeartbeatRequest
	ClientID   string
	ClientHost string
}

func errResp(resp *kmsg.ConsumerGroupHeartbeatResponse, e *kerr.Error, format string, args ...any) *kmsg.ConsumerGroupHeartbeatResponse {
	resp.ErrorCode = e.Code
	if format != "" {
		msg := fmt.Sprintf(format, args...)
		resp.ErrorMessage = &msg
	}
	return resp
}

// validateConsumerHeartbeat is Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid.
func validateConsumerHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) *kmsg.ConsumerGroupHeartbeatResponse {
	empty := func(s *string) bool { return s != nil && *s == "" }
	switch {
	case (req.Version >= 1 || req.MemberEpoch > 0 || req.MemberEpoch == leaveEpoch) && req.MemberID == "":
		return errResp(resp, kerr.InvalidRequest, "MemberId can't be empty.")
	case strings.TrimSpace(req.Group) == "":
		return errResp(resp, kerr.InvalidRequest, "GroupId can't be empty.")
	case empty(req.InstanceID):
		return errResp(resp, kerr.InvalidRequest, "InstanceId can't be empty.")
	case empty(req.RackID):
		return errResp(resp, kerr.InvalidRequest, "RackId can't be empty.")
	}
	switch {
	case req.MemberEpoch == 0:
		switch {
		case req.RebalanceTimeoutMillis == -1:
			return errResp(resp, kerr.InvalidRequest, "RebalanceTimeoutMs must be provided in first request.")
		case req.Topics == nil || len(req.Topics) > 0:
			return errResp(resp, kerr.InvalidRequest, "TopicPartitions must be empty when (re-)joining.")
		case req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
			return errResp(resp, kerr.InvalidRequest, "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.")
		}
	case req.MemberEpoch == staticLeaveEpoch:
		if req.InstanceID == nil {
			return errResp(resp, kerr.InvalidRequest, "InstanceId can't be null.")
		}
	case req.MemberEpoch < staticLeaveEpoch:
		return errResp(resp, kerr.InvalidRequest, "MemberEpoch is invalid.")
	}
	if req.ServerAssignor != nil && !slices.Contains(serverAssignors, *req.ServerAssignor) {
		return errResp(resp, kerr.UnsupportedAssignor, "ServerAssignor %s is not supported. Supported assignors: %s.", *req.ServerAssignor, strings.Join(serverAssignors, ", "))
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != "" {
		if _, err := compileTopicRegex(*req.SubscribedTopicRegex); err != nil {
			return errResp(resp, kerr.InvalidRegularExpression, "SubscribedTopicRegex `%s` is not a valid regular expression: %v.", *req.SubscribedTopicRegex, err)
		}
	}
	return nil
}

// compileTopicRegex compiles a SubscribedTopicRegex. Kafka matches it against the whole
// topic name (RE2J's matches()), so it is anchored here.
func compileTopicRegex(s string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + s + `)$`)
}

// ConsumerHeartbeat serves a ConsumerGroupHeartbeat: join (epoch 0), leave (-1), static
// leave (-2) or a heartbeat of a member (its epoch), as Kafka's GroupMetadataManager.
func (c *Coordinator) ConsumerHeartbeat(hr ConsumerHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	req := hr.Req
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	if r := validateConsumerHeartbeat(req, resp); r != nil {
		return r
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if req.MemberEpoch < 0 {
		return c.consumerLeaveLocked(req, resp)
	}
	g := c.groups[req.Group]
	switch {
	case g != nil && g.cons == nil && len(g.members) > 0:
		// A classic group with members: Kafka converts it only with online migration
		// (group.consumer.migration.policy), which is not served here.
		return errResp(resp, kerr.GroupIDNotFound, "Group %s is not a consumer group.", req.Group)
	case (g == nil || g.cons == nil) && req.MemberEpoch > 0:
		// Kafka keeps groups across restarts and would find the member; here the
		// membership is gone, so the member hears it is unknown and rejoins.
		return errResp(resp, kerr.UnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, req.Group)
	case g == nil:
		g = &group{name: strings.Clone(req.Group), members: map[string]*member{}, pending: map[string]time.Time{}, emptySince: c.now()}
		c.groups[g.name] = g
		fallthrough
	case g.cons == nil:
		// A new group, or an Empty classic one (offsets only): a consumer group from
		// now on, with its committed offsets. Kafka removes the classic group's
		// metadata record (a tombstone); consumer groups' own records are not written
		// here (UNSUPPORTED.md).
		if g.generation > 0 {
			c.mirrorLocked(g.name, []TopicRecord{{Key: GroupKey(g.name)}})
		}
		g.cons = newConsumerGroup()
		g.protocolType, g.protocol, g.leader = "consumer", "", ""
		g.state = stateEmpty
		c.log.Info("consumer group created", "group", g.name)
	}
	cg := g.cons
	now := c.now()
	var m *cmember
	subChanged := false
	if req.MemberEpoch == 0 {
		var r *kmsg.ConsumerGroupHeartbeatResponse
		if m, subChanged, r = c.consumerJoinLocked(g, hr, resp); r != nil {
			return r
		}
	} else {
		if req.InstanceID != nil {
			if sm := cg.staticMember(*req.InstanceID); sm == nil {
				return errResp(resp, kerr.UnknownMemberID, "Instance id %s is unknown.", *req.InstanceID)
			} else if sm.id != req.MemberID {
				return errResp(resp, kerr.FencedInstanceID, "Static member %s with instance id %s was fenced by member %s.", req.MemberID, *req.InstanceID, sm.id)
			}
		}
		if m = cg.members[req.MemberID]; m == nil {
			return errResp(resp, kerr.UnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, req.Group)
		}
		if code := checkMemberEpoch(m, req); code != nil {
			return errResp(resp, code, "The consumer group member has a %s member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.",
				map[bool]string{true: "greater", false: "smaller"}[req.MemberEpoch > m.epoch], req.MemberEpoch, m.epoch)
		}
		var err *kerr.Error
		if subChanged, err = updateSubscription(m, hr); err != nil {
			return errResp(resp, err, "")
		}
	}
	m.lastSeen = now
	if subChanged {
		cg.epoch++
	}
	topics := c.topicsLocked()
	if cg.epoch == cg.assignEpoch && cg.metaFingerprint(topics) != cg.meta {
		// A subscribed topic was created or deleted, or has more partitions.
		cg.epoch++
	}
	if cg.epoch > cg.assignEpoch {
		c.assignLocked(g, topics)
	}
	before := m.assigned
	c.reconcileLocked(g, m, req.Topics)
	g.emptySince = time.Time{}
	resp.MemberID = &m.id
	resp.MemberEpoch = m.epoch
	// Only a member's heartbeat is told the interval (errors and leaves: 0, as Kafka).
	resp.HeartbeatIntervalMillis = int32(c.opts.ConsumerHeartbeatInterval.Milliseconds())
	full := req.RebalanceTimeoutMillis != -1 && (req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) && req.Topics != nil
	if req.MemberEpoch == 0 || full || !before.equal(m.assigned) {
		resp.Assignment = assignmentOf(m.assigned)
	}
	c.kickReaper()
	return resp
}

// checkMemberEpoch is Kafka's throwIfConsumerGroupMemberEpochIsInvalid: a heartbeat
// with the member's previous epoch is taken if it owns only partitions of its current
// assignment (the response that bumped the epoch may have been lost).
func checkMemberEpoch(m *cmember, req *kmsg.ConsumerGroupHeartbeatRequest) *kerr.Error {
	switch {
	case req.MemberEpoch > m.epoch:
		return kerr.FencedMemberEpoch
	case req.MemberEpoch < m.epoch:
		if req.MemberEpoch != m.prevEpoch || req.Topics == nil {
			return kerr.FencedMemberEpoch
		}
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				if !m.assigned.has(t.TopicID, p) {
					return kerr.FencedMemberEpoch
				}
			}
		}
	}
	return nil
}

// consumerJoinLocked adds a member (epoch 0) or takes a known member back in (the
// response to its earlier join may have been lost). A static member (InstanceID)
// replaces its previous incarnation once that one left with epoch -2; while it is
// still in the group: UNRELEASED_INSTANCE_ID.
func (c *Coordinator) consumerJoinLocked(g *group, hr ConsumerHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) (*cmember, bool, *kmsg.ConsumerGroupHeartbeatResponse) {
	req, cg := hr.Req, g.cons
	id := req.MemberID
	if id == "" { // v0: the coordinator names the member
		id = newMemberID(hr.ClientID)
	}
	m := cg.members[id]
	var old *cmember
	if req.InstanceID != nil {
		if sm := cg.staticMember(*req.InstanceID); sm != nil && sm.id != id {
			if sm.epoch != staticLeaveEpoch {
				return nil, false, errResp(resp, kerr.UnreleasedInstanceID, "Static member %s with instance id %s cannot join the group because the instance id is owned by %s member.", id, *req.InstanceID, sm.id)
			}
			old = sm
		}
	}
	changed := false
	if m == nil {
		m = &cmember{id: strings.Clone(id), assigned: parts{}, revoking: parts{}, target: parts{}}
		if req.InstanceID != nil {
			m.instanceID = strings.Clone(*req.InstanceID)
		}
		if old != nil {
			// The new incarnation takes over the old one's assignment, as Kafka's
			// consumerGroupReplaceStaticMember, and so keeps its partitions.
			m.assigned, m.revoking, m.target, m.since = old.assigned.clone(), old.revoking.clone(), old.target.clone(), old.since
			m.topics, m.regex, m.re, m.assignor = old.topics, old.regex, old.re, old.assignor
			delete(cg.members, old.id)
			c.setOwnersLocked(cg, old, parts{}, parts{})
			for _, ps := range []parts{m.assigned, m.revoking} {
				for tid, list := range ps {
					for _, p := range list {
						cg.owners[tpKey{tid, p}] = m.id
					}
				}
			}
			if len(m.revoking) > 0 {
				m.state = memberUnrevoked
			}
			c.log.Info("static member replaced", "group", g.name, "instance_id", m.instanceID, "old_member", old.id, "member", m.id)
		} else {
			changed = true
			c.log.Info("member joined", "group", g.name, "member", m.id, "client_id", hr.ClientID, "host", hr.ClientHost)
		}
		cg.members[m.id] = m
	} else if m.epoch == staticLeaveEpoch {
		// The static member is back under the same member id.
		m.epoch, m.state = 0, memberUnreleased
	}
	if old != nil && m.state == memberStable {
		m.state = memberUnreleased // reconciled below
	}
	// A known member rejoining keeps its state: its response carries its whole
	// assignment again (the one to its earlier join may have been lost).
	subChanged, err := updateSubscription(m, hr)
	if err != nil {
		if changed {
			delete(cg.members, m.id)
		}
		return nil, false, errResp(resp, err, "")
	}
	return m, changed || subChanged, nil
}

// updateSubscription applies what a heartbeat changes of its member; it reports
// whether the assignment depends on the change (subscription or assignor).
func updateSubscription(m *cmember, hr ConsumerHeartbeatRequest) (bool, *kerr.Error) {
	req := hr.Req
	changed := false
	m.clientID, m.clientHost = hr.ClientID, hr.ClientHost
	if req.RackID != nil {
		m.rackID = strings.Clone(*req.RackID)
	}
	if req.RebalanceTimeoutMillis > 0 {
		m.rebalance = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	if req.SubscribedTopicNames != nil {
		names := make([]string, 0, len(req.SubscribedTopicNames))
		for _, n := range req.SubscribedTopicNames {
			names = append(names, strings.Clone(n))
		}
		sort.Strings(names)
		names = slices.Compact(names)
		if !slices.Equal(names, m.topics) {
			m.topics, changed = names, true
		}
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != m.regex {
		m.regex, m.re = strings.Clone(*req.SubscribedTopicRegex), nil
		if m.regex != "" {
			re, err := compileTopicRegex(m.regex)
			if err != nil {
				return false, kerr.InvalidRegularExpression
			}
			m.re = re
		}
		changed = true
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		m.assignor, changed = strings.Clone(*req.ServerAssignor), true
	}
	return changed, nil
}

// consumerLeaveLocked serves epochs -1 (leave) and -2 (a static member leaves, to come
// back: it keeps its partitions until its session times out).
func (c *Coordinator) consumerLeaveLocked(req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) *kmsg.ConsumerGroupHeartbeatResponse {
	g := c.groups[req.Group]
	switch {
	case g == nil:
		return errResp(resp, kerr.GroupIDNotFound, "Group %s not found.", req.Group)
	case g.cons == nil:
		return errResp(resp, kerr.GroupIDNotFound, "Group %s is not a consumer group.", req.Group)
	}
	cg := g.cons
	var m *cmember
	if req.InstanceID != nil {
		if m = cg.staticMember(*req.InstanceID); m == nil {
			return errResp(resp, kerr.UnknownMemberID, "Instance id %s is unknown.", *req.InstanceID)
		}
		if m.id != req.MemberID {
			return errResp(resp, kerr.FencedInstanceID, "Static member %s with instance id %s was fenced by member %s.", req.MemberID, *req.InstanceID, m.id)
		}
	} else if m = cg.members[req.MemberID]; m == nil {
		return errResp(resp, kerr.UnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, req.Group)
	}
	resp.MemberID = &m.id
	resp.MemberEpoch = req.MemberEpoch
	if req.MemberEpoch == staticLeaveEpoch {
		c.log.Info("static member left, to come back", "group", g.name, "member", m.id, "instance_id", m.instanceID)
		m.prevEpoch, m.epoch = m.epoch, staticLeaveEpoch
		m.lastSeen = c.now()
		return resp
	}
	c.log.Info("member left", "group", g.name, "member", m.id)
	c.removeConsumerMemberLocked(g, m)
	return resp
}

// removeConsumerMemberLocked fences a member out of its group (leave, session or
// rebalance timeout): its partitions are free and the target assignment is computed
// again without it.
func (c *Coordinator) removeConsumerMemberLocked(g *group, m *cmember) {
	cg := g.cons
	c.setOwnersLocked(cg, m, parts{}, parts{})
	delete(cg.members, m.id)
	cg.epoch++
	if len(cg.members) == 0 {
		cg.assignEpoch, cg.meta = cg.epoch, ""
		g.emptySince = c.now()
		c.log.Info("consumer group is now empty", "group", g.name, "epoch", cg.epoch)
		return
	}
	c.assignLocked(g, c.topicsLocked())
}

// topicsLocked lists the broker's topics (Options.Topics), sorted by name.
func (c *Coordinator) topicsLocked() []TopicMeta {
	if c.opts.Topics == nil {
		return nil
	}
	ts := c.opts.Topics()
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return ts
}

// assignLocked computes the group's target assignment for its epoch.
func (c *Coordinator) assignLocked(g *group, topics []TopicMeta) {
	cg := g.cons
	cg.assignor = cg.preferredAssignor()
	cg.meta = cg.metaFingerprint(topics)
	target := assign(cg.assignor, cg.members, topics)
	for id, m := range cg.members {
		m.target = target[id]
		if m.target == nil {
			m.target = parts{}
		}
	}
	cg.assignEpoch = cg.epoch
	c.log.Info("computed the target assignment", "group", g.name, "epoch", cg.epoch, "assignor", cg.assignor, "members", len(cg.members))
}

// reconcileLocked moves m towards its target assignment, as Kafka's
// CurrentAssignmentBuilder. owned are the partitions the heartbeat lists (nil: not
// sent, unchanged since the last one).
func (c *Coordinator) reconcileLocked(g *group, m *cmember, owned []kmsg.ConsumerGroupHeartbeatRequestTopic) {
	cg := g.cons
	switch m.state {
	case memberStable:
		if m.epoch == cg.assignEpoch {
			return
		}
	case memberUnrevoked:
		if ownsAny(owned, m.revoking) {
			return // it has not revoked them yet
		}
	}
	// Kafka's computeNextAssignment.
	keep, adding := parts{}, parts{}
	revoke := parts{}
	unreleased := false
	ids := map[[16]byte]bool{}
	for id := range m.assigned {
		ids[id] = true
	}
	for id := range m.target {
		ids[id] = true
	}
	for id := range ids {
		for _, p := range m.assigned[id] {
			if m.target.has(id, p) {
				keep.add(id, p)
			} else {
				revoke.add(id, p)
			}
		}
		for _, p := range m.target[id] {
			if m.assigned.has(id, p) {
				continue
			}
			if o, held := cg.owners[tpKey{id, p}]; held && o != m.id {
				unreleased = true
				continue
			}
			adding.add(id, p)
		}
	}
	switch {
	case len(revoke) > 0 && ownsAny(owned, revoke):
		// Revoke first, at the same epoch; the rest follows once it has.
		if m.state != memberUnrevoked {
			m.revokeBy = c.now().Add(m.rebalance)
		}
		m.state = memberUnrevoked
		c.setOwnersLocked(cg, m, keep, revoke)
		return
	case len(adding) > 0:
		for id, ps := range adding {
			for _, p := range ps {
				keep.add(id, p)
			}
		}
	}
	m.state = memberStable
	if unreleased {
		m.state = memberUnreleased
	}
	if m.epoch != cg.assignEpoch {
		m.prevEpoch, m.epoch = m.epoch, cg.assignEpoch
	}
	since := make(map[tpKey]int32, keep.count())
	for id, ps := range keep {
		for _, p := range ps {
			k := tpKey{id, p}
			if e, ok := m.since[k]; ok && m.assigned.has(id, p) {
				since[k] = e
			} else {
				since[k] = m.epoch
			}
		}
	}
	m.since = since
	c.setOwnersLocked(cg, m, keep, parts{})
}

// ownsAny reports whether the heartbeat's owned partitions include one of ps; owned
// nil (not sent) means they may.
func ownsAny(owned []kmsg.ConsumerGroupHeartbeatRequestTopic, ps parts) bool {
	if owned == nil {
		return len(ps) > 0
	}
	for _, t := range owned {
		for _, p := range t.Partitions {
			if ps.has(t.TopicID, p) {
				return true
			}
		}
	}
	return false
}

// setOwnersLocked gives m the partitions assigned and revoking, and keeps owners in step.
func (c *Coordinator) setOwnersLocked(cg *consumerGroup, m *cmember, assigned, revoking parts) {
	for _, ps := range []parts{m.assigned, m.revoking} {
		for id, list := range ps {
			for _, p := range list {
				k := tpKey{id, p}
				if cg.owners[k] == m.id {
					delete(cg.owners, k)
				}
			}
		}
	}
	m.assigned, m.revoking = assigned, revoking
	for _, ps := range []parts{assigned, revoking} {
		for id, list := range ps {
			for _, p := range list {
				k := tpKey{id, p}
				if o, ok := cg.owners[k]; ok && o != m.id {
					panic(fmt.Sprintf("BUG: partition %x-%d given to %s while %s owns it", id, p, m.id, o))
				}
				cg.owners[k] = m.id
			}
		}
	}
	if len(revoking) == 0 {
		m.revokeBy = time.Time{}
	}
}

func assignmentOf(ps parts) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	a.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	for _, id := range sortedIDs(ps) {
		t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		t.TopicID, t.Partitions = id, slices.Clone(ps[id])
		a.Topics = append(a.Topics, t)
	}
	return &a
}

func sortedIDs(ps parts) [][16]byte {
	ids := make([][16]byte, 0, len(ps))
	for id := range ps {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b [16]byte) int { return strings.Compare(string(a[:]), string(b[:])) })
	return ids
}

// expireConsumerLocked fences the members whose session or rebalance timeout ran out; it
// reports whether the group still has members to watch.
func (c *Coordinator) expireConsumerLocked(g *group, now time.Time) bool {
	for _, id := range sortedKeys(g.cons.members) {
		m := g.cons.members[id]
		switch {
		case now.Sub(m.lastSeen) > c.opts.ConsumerSessionTimeout:
			c.log.Info("member session expired", "group", g.name, "member", id)
			c.removeConsumerMemberLocked(g, m)
		case m.state == memberUnrevoked && !m.revokeBy.IsZero() && now.After(m.revokeBy):
			c.log.Info("member fenced: it did not revoke its partitions within its rebalance timeout", "group", g.name, "member", id, "epoch", m.epoch)
			c.removeConsumerMemberLocked(g, m)
		}
	}
	return len(g.cons.members) > 0
}

// ConsumerMemberInfo describes a consumer group member (ConsumerGroupDescribe).
type ConsumerMemberInfo struct {
	ID, InstanceID, RackID, ClientID, ClientHost string
	Epoch                                        int32
	State                                        string
	SubscribedTopics                             []string
	SubscribedTopicRegex                         string
	Assigned, Target                             map[[16]byte][]int32
}

// ConsumerGroupInfo describes a consumer group.
type ConsumerGroupInfo struct {
	Name, State, Assignor string
	Epoch, AssignEpoch    int32
	Members               []ConsumerMemberInfo
}

// DescribeConsumer returns a consumer group; ok=false when name is not one (unknown,
// or a classic group).
func (c *Coordinator) DescribeConsumer(name string) (ConsumerGroupInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	if g == nil || g.cons == nil {
		return ConsumerGroupInfo{}, false
	}
	cg := g.cons
	gi := ConsumerGroupInfo{Name: name, State: cg.state(), Assignor: cg.preferredAssignor(), Epoch: cg.epoch, AssignEpoch: cg.assignEpoch}
	for _, id := range sortedKeys(cg.members) {
		m := cg.members[id]
		gi.Members = append(gi.Members, ConsumerMemberInfo{ID: id, InstanceID: m.instanceID, RackID: m.rackID, ClientID: m.clientID, ClientHost: m.clientHost,
			Epoch: m.epoch, State: m.state.String(), SubscribedTopics: slices.Clone(m.topics), SubscribedTopicRegex: m.regex,
			Assigned: m.assigned.clone(), Target: m.target.clone()})
	}
	return gi, true
}

// checkConsumerCommitLocked is Kafka's ConsumerGroup.validateOffsetCommit: a commit
// with a negative epoch is taken while the group has no members; otherwise it must come
// from a member, over OffsetCommit v9+ unless transactional, at its current epoch, or
// (Kafka 4.3, KIP-1251) at an older one that every committed partition was already
// assigned to it at; else STALE_MEMBER_EPOCH (ILLEGAL_GENERATION for a transactional
// commit, which has no such error): the member must heartbeat first.
func (c *Coordinator) checkConsumerCommitLocked(cg *consumerGroup, memberID string, epoch int32, version int16, txn bool, offs map[string]map[int32]Committed) int16 {
	if epoch < 0 && len(cg.members) == 0 {
		return 0
	}
	m := cg.members[memberID]
	stale := kerr.StaleMemberEpoch.Code
	if txn {
		stale = kerr.IllegalGeneration.Code
	}
	switch {
	case m == nil:
		return kerr.UnknownMemberID.Code
	case !txn && version < 9:
		return kerr.UnsupportedVersion.Code
	case epoch > m.epoch:
		return stale
	case epoch < m.epoch:
		if epoch < 0 || offs == nil {
			return stale
		}
		ids := map[string][16]byte{}
		for _, t := range c.topicsLocked() {
			ids[t.Name] = t.ID
		}
		for t, ps := range offs {
			id, ok := ids[t]
			if !ok {
				return stale
			}
			for p := range ps {
				if since, ok := m.since[tpKey{id, p}]; !ok || since > epoch {
					return stale
				}
			}
		}
	}
	return 0
}

// CheckFetch validates an OffsetFetch v9+ group's member id and epoch, as Kafka's
// validateOffsetFetch: for a consumer group, a request naming a member must come from
// that member at its current epoch; classic groups and requests without a member (the
// admin client: no member id, epoch -1) are not checked.
func (c *Coordinator) CheckFetch(name string, memberID *string, epoch int32) int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	if g == nil || g.cons == nil || memberID == nil && epoch < 0 {
		return 0
	}
	id := ""
	if memberID != nil {
		id = *memberID
	}
	m := g.cons.members[id]
	switch {
	case m == nil:
		return kerr.UnknownMemberID.Code
	case m.epoch != epoch:
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}
