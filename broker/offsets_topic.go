package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/groups"
	"github.com/tagpipe/tagpipe/broker/storage"
)

// __consumer_offsets: Kafka's internal topic of group commits and group metadata, kept
// here as real partitions of the broker's storage (Dir/__consumer_offsets-N, beside the
// coordinator's own Dir/__consumer_offsets/offsets.log). The group coordinator
// (broker/groups) stays the source of truth; after each change it persisted it hands
// the records Kafka's GroupMetadataManager would write to mirrorGroupRecords, which
// appends them to the group's partition (groups.PartitionFor). Clients read the topic
// as any other (Fetch, ListOffsets, ACLs); they cannot write or reshape it
// (refuseInternal). A start reconciles the topic with the coordinator, so an append lost
// to a crash (or a failed one) is made up for.

const offsetsTopic = "__consumer_offsets"

// offsetsSegmentBytes is Kafka's offsets.topic.segment.bytes default.
const offsetsSegmentBytes = 100 << 20

// isInternalTopic is Kafka's Topic.isInternal for the topics this broker has.
// (__transaction_state is not a topic here: see txn.go.)
func isInternalTopic(name string) bool { return name == offsetsTopic }

// offsetsTopicConfigs are the overrides Kafka's group coordinator creates the topic with
// (GroupCoordinator.groupMetadataTopicConfigs).
func offsetsTopicConfigs() map[string]string {
	return map[string]string{
		"cleanup.policy":   "compact",
		"compression.type": "producer",
		"segment.bytes":    fmt.Sprint(offsetsSegmentBytes),
	}
}

// ensureOffsetsTopic creates __consumer_offsets with OffsetsTopicPartitions partitions
// when topics.json does not list it. An existing one keeps its partition count (as in
// Kafka, where offsets.topic.num.partitions applies only when the topic is created).
func (b *Broker) ensureOffsetsTopic() error {
	if b.topic(offsetsTopic) != nil {
		return nil
	}
	_, te := b.createTopic(offsetsTopic, b.opts.OffsetsTopicPartitions, -1, offsetsTopicConfigs(), false)
	switch {
	case te == nil:
		return nil
	case b.topic(offsetsTopic) != nil:
		// Created, but topics.json could not be synced: its partitions take records once
		// a save is synced (as any topic's).
		b.log.Warn("cannot sync topics.json after creating __consumer_offsets", "err", te)
		return nil
	}
	return fmt.Errorf("cannot create %s: %w", offsetsTopic, te)
}

// offsetsPartition is the partition of __consumer_offsets that holds group's records.
func (b *Broker) offsetsPartition(group string) (*partition, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t := b.topics[offsetsTopic]
	if t == nil || len(t.parts) == 0 {
		return nil, fmt.Errorf("%s does not exist", offsetsTopic)
	}
	return t.parts[groups.PartitionFor(group, int32(len(t.parts)))], nil
}

// failOffsetsAppend, when set, fails every append to __consumer_offsets: tests stand in
// for a crash between offsets.log and the topic with it.
var failOffsetsAppend atomic.Bool

// mirrorGroupRecords is the coordinator's Options.Mirror: it appends one group's records
// to its partition in one batch.
func (b *Broker) mirrorGroupRecords(group string, recs []groups.TopicRecord) error {
	p, err := b.offsetsPartition(group)
	if err != nil {
		return err
	}
	return b.appendInternal(p, recs)
}

// maxInternalBatch bounds the records of one batch the broker writes itself.
const maxInternalBatch = 500

// appendInternal appends records the broker writes itself (not a producer's) to p.
func (b *Broker) appendInternal(p *partition, recs []groups.TopicRecord) error {
	if failOffsetsAppend.Load() {
		return errors.New("appends to __consumer_offsets fail (test)")
	}
	if p.unsynced.Load() {
		if err := b.syncTopics(p); err != nil {
			return err
		}
	}
	for len(recs) > 0 {
		n := min(len(recs), maxInternalBatch)
		batch := internalBatch(recs[:n], b.now().UnixMilli())
		p.appendMu.Lock()
		_, err := p.log.Append(batch)
		p.appendMu.Unlock()
		if err != nil {
			return fmt.Errorf("cannot append to %s-%d: %w", p.topic, p.index, err)
		}
		recs = recs[n:]
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// internalBatch encodes records as one uncompressed RecordBatch v2 without a producer,
// as Kafka's coordinators write theirs; the append assigns its offsets.
func internalBatch(recs []groups.TopicRecord, nowMs int64) []byte {
	var records []byte
	for i, r := range recs {
		rec := kmsg.Record{OffsetDelta: int32(i), Key: r.Key, Value: r.Value}
		body := rec.AppendTo(nil)[1:] // without its Length (0: one varint byte)
		records = binary.AppendVarint(records, int64(len(body)))
		records = append(records, body...)
	}
	rb := kmsg.RecordBatch{
		Length:          int32(49 + len(records)), // PartitionLeaderEpoch up to the records
		Magic:           2,
		LastOffsetDelta: int32(len(recs) - 1),
		FirstTimestamp:  nowMs,
		MaxTimestamp:    nowMs,
		ProducerID:      -1,
		ProducerEpoch:   -1,
		FirstSequence:   -1,
		NumRecords:      int32(len(recs)),
		Records:         records,
	}
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], castagnoli)) // CRC from the attributes on
	return out
}

// reconcileOffsetsTopic brings __consumer_offsets in line with the coordinator at start:
// it reads every partition once (the topic is compacted, so about its live keys), and
// appends what the coordinator says differently (groups.Coordinator.Reconcile). The
// superseded records go with the next compaction.
func (b *Broker) reconcileOffsetsTopic() error {
	t := b.topic(offsetsTopic)
	if t == nil {
		return nil
	}
	latest := map[string][]byte{}
	skipped := 0
	for _, p := range b.snapshot(t).parts {
		n, err := readKeyed(p.log, func(key, value []byte) { latest[string(key)] = value })
		if err != nil {
			return fmt.Errorf("cannot read %s-%d: %w", p.topic, p.index, err)
		}
		skipped += n
	}
	if skipped > 0 {
		b.log.Warn("__consumer_offsets has batches this broker did not write (compressed or transactional); they are not reconciled", "batches", skipped)
	}
	fixes := b.groups.Reconcile(latest)
	if len(fixes) == 0 {
		return nil
	}
	byPart := map[*partition][]groups.TopicRecord{}
	var order []*partition
	for _, f := range fixes {
		p, err := b.offsetsPartition(f.Group)
		if err != nil {
			return err
		}
		if byPart[p] == nil {
			order = append(order, p)
		}
		byPart[p] = append(byPart[p], f.TopicRecord)
	}
	slices.SortFunc(order, func(x, y *partition) int { return int(x.index - y.index) })
	for _, p := range order {
		if err := b.appendInternal(p, byPart[p]); err != nil {
			return err
		}
	}
	b.log.Info("reconciled __consumer_offsets with the group coordinator", "records", len(fixes))
	return nil
}

// readKeyed calls fn with the key and value (nil: a tombstone) of every record of l's
// uncompressed, non-transactional batches, in offset order, and returns how many other
// batches it skipped. The slices are fn's to keep.
func readKeyed(l *storage.Log, fn func(key, value []byte)) (skipped int, err error) {
	off := l.LogStartOffset()
	for off < l.HighWatermark() {
		rr, err := l.Read(off, 1<<20)
		if err != nil {
			return skipped, err
		}
		data, err := rr.Bytes()
		next := rr.NextOffset()
		rr.Close()
		if err != nil {
			return skipped, err
		}
		if len(data) == 0 || next <= off {
			break
		}
		off = next
		for len(data) >= 12 {
			size := 12 + int(binary.BigEndian.Uint32(data[8:12]))
			if size > len(data) {
				break
			}
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(data[:size]); err != nil {
				return skipped, fmt.Errorf("bad batch before offset %d: %w", off, err)
			}
			data = data[size:]
			if rb.Attributes&0x07 != 0 || rb.Attributes&0x30 != 0 { // compressed; transactional or control
				skipped++
				continue
			}
			recs := rb.Records
			for i := int32(0); i < rb.NumRecords && len(recs) > 0; i++ {
				n, w := binary.Varint(recs)
				if w <= 0 || int(n) > len(recs)-w {
					return skipped, fmt.Errorf("bad record in the batch at offset %d", rb.FirstOffset)
				}
				var r kmsg.Record
				if err := r.ReadFrom(recs[:w+int(n)]); err != nil {
					return skipped, fmt.Errorf("bad record in the batch at offset %d: %w", rb.FirstOffset, err)
				}
				recs = recs[w+int(n):]
				if r.Key != nil {
					fn(slices.Clone(r.Key), cloneOrNil(r.Value))
				}
			}
		}
	}
	return skipped, nil
}

func cloneOrNil(b []byte) []byte {
	if b == nil {
		return nil
	}
	return slices.Clone(b)
}
