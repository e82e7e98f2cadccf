package groups

import (
	"bytes"
	"encoding/binary"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The records of the __consumer_offsets topic, as Kafka 3.x's GroupMetadataManager
// writes them (the versions of its MetadataVersion.offsetCommitValueVersion and
// groupMetadataValueVersion for every release since 2.3): OffsetCommitKey v1 →
// OffsetCommitValue v3, GroupMetadataKey v2 → GroupMetadataValue v3, a nil value
// (tombstone) when an offset or a group is removed. offsets.log stays the coordinator's
// own record of the offsets; the topic is what Kafka tools (Burrow, lag exporters,
// kafka-console-consumer's OffsetsMessageFormatter, kcat) read.

// Kafka's key and value schema versions.
const (
	offsetCommitKeyVersion    = 1
	offsetCommitValueVersion  = 3
	groupMetadataKeyVersion   = 2
	groupMetadataValueVersion = 3
)

// TopicRecord is one record for __consumer_offsets: Value nil is a tombstone.
type TopicRecord struct {
	Key, Value []byte
}

// PartitionFor is Kafka's GroupMetadataManager.partitionFor: the __consumer_offsets
// partition of a group, abs(group.hashCode) % partitions with Java's String.hashCode
// over the group id's UTF-16 code units, and Kafka's Utils.abs (MinInt32 maps to 0).
func PartitionFor(group string, partitions int32) int32 {
	var h int32
	for _, r := range group {
		if r >= 0x10000 { // a surrogate pair in UTF-16
			r -= 0x10000
			h = 31*h + int32(0xd800+(r>>10))
			h = 31*h + int32(0xdc00+(r&0x3ff))
			continue
		}
		h = 31*h + int32(r)
	}
	if h == -h { // 0 or MinInt32: Utils.abs gives 0 for MinInt32
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}

// OffsetKey is the __consumer_offsets key of a group's committed offset.
func OffsetKey(group, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetCommitKeyVersion, Group: group, Topic: topic, Partition: partition}
	return k.AppendTo(nil)
}

// GroupKey is the __consumer_offsets key of a group's metadata.
func GroupKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupMetadataKeyVersion, Group: group}
	return k.AppendTo(nil)
}

func offsetValue(o Committed) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetCommitValueVersion
	v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = o.Offset, o.LeaderEpoch, o.Metadata, o.CommitMs
	return v.AppendTo(nil)
}

// offsetRecords are the records of a commit: one per partition, as committed.
func offsetRecords(rs []commitRecord) []TopicRecord {
	out := make([]TopicRecord, 0, len(rs))
	for _, r := range rs {
		out = append(out, TopicRecord{
			Key:   OffsetKey(r.Group, r.Topic, r.Partition),
			Value: offsetValue(Committed{Offset: r.Offset, LeaderEpoch: r.Epoch, Metadata: r.Metadata, CommitMs: r.CommitMs}),
		})
	}
	return out
}

// groupValue is the GroupMetadataValue of g as it is now (Kafka's
// GroupMetadataManager.groupMetadataValue): an Empty group has no protocol, leader or
// members; a Stable one its members with their subscription and assignment.
func (c *Coordinator) groupValue(g *group) []byte {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupMetadataValueVersion
	v.ProtocolType, v.Generation = g.protocolType, g.generation
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	v.CurrentStateTimestamp = c.now().UnixMilli()
	for _, id := range sortedKeys(g.members) {
		m := g.members[id]
		gm := kmsg.NewGroupMetadataValueMember()
		gm.MemberID, gm.ClientID, gm.ClientHost = id, m.clientID, m.clientHost
		if m.instanceID != "" {
			iid := m.instanceID
			gm.InstanceID = &iid
		}
		gm.RebalanceTimeoutMillis = int32(m.rebalance.Milliseconds())
		gm.SessionTimeoutMillis = int32(m.session.Milliseconds())
		for _, p := range m.protocols {
			if p.Name == g.protocol {
				gm.Subscription = p.Metadata
			}
		}
		gm.Assignment = m.assignment
		if gm.Subscription == nil {
			gm.Subscription = []byte{}
		}
		if gm.Assignment == nil {
			gm.Assignment = []byte{}
		}
		v.Members = append(v.Members, gm)
	}
	return v.AppendTo(nil)
}

// mirrorLocked hands records for group to Options.Mirror. offsets.log has what they
// say already, so a failure is only logged: the broker's start reconciles the topic
// with the coordinator (Reconcile).
func (c *Coordinator) mirrorLocked(group string, recs []TopicRecord) {
	if c.opts.Mirror == nil || len(recs) == 0 {
		return
	}
	if err := c.opts.Mirror(group, recs); err != nil {
		c.log.Warn("cannot append to __consumer_offsets; the next start appends what it misses", "group", group, "err", err)
	}
}

// mirrorGroupLocked writes g's metadata (after a rebalance completed or the group
// became Empty).
func (c *Coordinator) mirrorGroupLocked(g *group) {
	if c.opts.Mirror == nil {
		return
	}
	c.mirrorLocked(g.name, []TopicRecord{{Key: GroupKey(g.name), Value: c.groupValue(g)}})
}

// tombstonesLocked are the tombstones of a group's offsets (all of them when topics is
// nil) and, with group set, of its metadata, as Kafka writes for a deleted group or
// expired offsets. Only offsets the coordinator has get one.
func (c *Coordinator) tombstonesLocked(name string, topics map[string][]int32, group bool) []TopicRecord {
	var out []TopicRecord
	offs := c.offsets[name]
	if topics == nil {
		for _, t := range sortedKeys(offs) {
			for _, p := range sortedPartitions(offs[t]) {
				out = append(out, TopicRecord{Key: OffsetKey(name, t, p)})
			}
		}
	} else {
		for _, t := range sortedKeys(topics) {
			for _, p := range topics[t] {
				if _, ok := offs[t][p]; ok {
					out = append(out, TopicRecord{Key: OffsetKey(name, t, p)})
				}
			}
		}
	}
	if group {
		out = append(out, TopicRecord{Key: GroupKey(name)})
	}
	return out
}

func sortedPartitions(m map[int32]Committed) []int32 {
	return slices.Sorted(maps.Keys(m))
}

// Fix is a record Reconcile wants appended to __consumer_offsets, with the group whose
// partition takes it.
type Fix struct {
	Group string
	TopicRecord
}

// restoreLocked gives a group known only by its offsets (New makes it Empty, generation
// 0, no protocol type) what its latest metadata record in __consumer_offsets says, as
// Kafka's coordinator loads a group from the topic: the protocol type (ListGroups and
// DescribeGroups show "consumer" after a restart, as before it), the generation (the
// next one when the record still lists members, who are gone: Reconcile writes that
// Empty record), and for a group that was Empty already, when it became Empty (its
// offsets expire OffsetsRetention after that, as in Kafka, rather than after this
// start). A group with members or a generation of its own is left as it is.
func (c *Coordinator) restoreLocked(name string, gv *kmsg.GroupMetadataValue) {
	g := c.groups[name]
	if g == nil || len(g.members) > 0 || g.generation != 0 || g.protocolType != "" || g.state != stateEmpty {
		return
	}
	g.protocolType, g.generation = gv.ProtocolType, gv.Generation
	if len(gv.Members) > 0 {
		g.generation++
		return
	}
	if ts := time.UnixMilli(gv.CurrentStateTimestamp); gv.CurrentStateTimestamp > 0 && ts.Before(g.emptySince) {
		g.emptySince = ts
	}
}

// Reconcile compares __consumer_offsets, given as the latest value of each key (nil: a
// tombstone), with what the coordinator holds and returns the records that bring the
// topic in line: every committed offset whose record is missing or differs, a tombstone
// for every offset or group the coordinator no longer has, and for a group it knows
// only by its offsets (members are not kept across a restart) whose latest metadata
// still lists members, that metadata as Empty at the next generation, as Kafka's
// coordinator writes it once the members it loaded are gone. The broker's start calls
// it, so a change whose append was lost (a crash between offsets.log and the topic, a
// failed append) reaches the topic. Fixes come in key order, for a deterministic topic.
func (c *Coordinator) Reconcile(latest map[string][]byte) []Fix {
	c.mu.Lock()
	defer c.mu.Unlock()
	var fixes []Fix
	for _, g := range sortedKeys(c.offsets) {
		for _, t := range sortedKeys(c.offsets[g]) {
			for _, p := range sortedPartitions(c.offsets[g][t]) {
				k := OffsetKey(g, t, p)
				v := offsetValue(c.offsets[g][t][p])
				if cur, ok := latest[string(k)]; !ok || !bytes.Equal(cur, v) {
					fixes = append(fixes, Fix{Group: g, TopicRecord: TopicRecord{Key: k, Value: v}})
				}
			}
		}
	}
	for _, name := range sortedKeys(c.groups) {
		g := c.groups[name]
		if len(g.members) == 0 {
			continue
		}
		k := GroupKey(name)
		if v := c.groupValue(g); latest[string(k)] == nil {
			fixes = append(fixes, Fix{Group: name, TopicRecord: TopicRecord{Key: k, Value: v}})
		}
	}
	for _, k := range sortedKeys(latest) {
		v := latest[k]
		if v == nil {
			continue
		}
		if len(k) < 2 {
			continue
		}
		switch version := int16(binary.BigEndian.Uint16([]byte(k))); version {
		case 0, 1:
			var ok kmsg.OffsetCommitKey
			if ok.ReadFrom([]byte(k)) != nil {
				continue
			}
			if _, have := c.offsets[ok.Group][ok.Topic][ok.Partition]; !have {
				fixes = append(fixes, Fix{Group: ok.Group, TopicRecord: TopicRecord{Key: []byte(k)}})
			}
		case 2:
			var gk kmsg.GroupMetadataKey
			if gk.ReadFrom([]byte(k)) != nil {
				continue
			}
			if g := c.groups[gk.Group]; g != nil && len(g.members) > 0 {
				continue // live: its record was written above if missing
			}
			if _, have := c.offsets[gk.Group]; !have {
				fixes = append(fixes, Fix{Group: gk.Group, TopicRecord: TopicRecord{Key: []byte(k)}})
				continue
			}
			var gv kmsg.GroupMetadataValue
			if gv.ReadFrom(v) != nil {
				continue
			}
			c.restoreLocked(gk.Group, &gv)
			if len(gv.Members) == 0 {
				continue
			}
			empty := kmsg.NewGroupMetadataValue()
			empty.Version = groupMetadataValueVersion
			empty.ProtocolType, empty.Generation = gv.ProtocolType, gv.Generation+1
			empty.CurrentStateTimestamp = c.now().UnixMilli()
			fixes = append(fixes, Fix{Group: gk.Group, TopicRecord: TopicRecord{Key: []byte(k), Value: empty.AppendTo(nil)}})
		}
	}
	return fixes
}
