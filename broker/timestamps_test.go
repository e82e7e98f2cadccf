package broker

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka 3.6+ (KIP-937, LogValidator.validateTimestamp) refuses a CreateTime record whose
// timestamp is more than message.timestamp.before.max.ms behind or after.max.ms ahead of
// the broker's clock with INVALID_TIMESTAMP, checking every record, compressed or not; a
// bound at its default takes the deprecated message.timestamp.difference.max.ms
// (LogConfig); LogAppendTime topics are not checked. The configs are described, created,
// altered and incrementally altered like the others.
func TestTimestampBounds(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	o := testOptions(t)
	o.Now = func() time.Time { return now }
	b := startBroker(t, o)
	_, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	hour, minute := "3600000", "60000"
	r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{
		"message.timestamp.before.max.ms": &hour, "message.timestamp.after.max.ms": &minute}, "ts")
	if err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	for key, want := range map[string]string{"message.timestamp.before.max.ms": hour, "message.timestamp.after.max.ms": minute} {
		if c := configOf(t, adm, "ts", key); c.MaybeValue() != want || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			t.Fatalf("%s: %q from %v, want %s from the topic", key, c.MaybeValue(), c.Source, want)
		}
	}
	c := configOf(t, adm, "ts", "message.timestamp.difference.max.ms")
	if c.MaybeValue() != "9223372036854775807" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("difference.max.ms: %q from %v, want Long.MAX by default", c.MaybeValue(), c.Source)
	}

	produce := func(codec kgo.CompressionCodec, ts time.Time) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ProducerBatchCompression(codec),
			kgo.RecordRetries(1), kgo.DisableIdempotentWrite())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		return cl.ProduceSync(ctx, &kgo.Record{Topic: "ts", Value: []byte("v"), Timestamp: ts}).FirstErr()
	}
	expect := func(step string, ts time.Time, want *kerr.Error) {
		t.Helper()
		for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.Lz4Compression()} {
			hwm := b.partition("ts", 0).log.HighWatermark()
			err := produce(codec, ts)
			switch {
			case want == nil && err != nil:
				t.Fatalf("%s: %v", step, err)
			case want != nil && !errors.Is(err, want):
				t.Fatalf("%s: %v, want %v", step, err, want)
			case want != nil && b.partition("ts", 0).log.HighWatermark() != hwm:
				t.Fatalf("%s: the refused record was appended", step)
			}
		}
	}
	expect("30 minutes old", now.Add(-30*time.Minute), nil)
	expect("2 hours old", now.Add(-2*time.Hour), kerr.InvalidTimestamp)
	expect("30 seconds ahead", now.Add(30*time.Second), nil)
	expect("2 minutes ahead", now.Add(2*time.Minute), kerr.InvalidTimestamp)

	// One batch whose second record's (negative) delta takes it out of bounds: the whole
	// batch is refused and the record is named (v8+ ErrorRecords).
	raw := rawBatch(now.UnixMilli(), []int64{0, -3 * 3600_000, 0})
	resp := roundTrip[*kmsg.ProduceResponse](t, b.Addr(), produceReq(-1, "ts", 0, raw))
	sp := resp.Topics[0].Partitions[0]
	if sp.ErrorCode != kerr.InvalidTimestamp.Code || len(sp.ErrorRecords) != 1 || sp.ErrorRecords[0].RelativeOffset != 1 ||
		sp.ErrorMessage == nil {
		t.Fatalf("batch with one record out of bounds: %v %v %+v", kerr.ErrorForCode(sp.ErrorCode), sp.ErrorMessage, sp.ErrorRecords)
	}

	// LogAppendTime: the producer's timestamps are not checked.
	lat := "LogAppendTime"
	alter := func(op kadm.IncrementalOp, name string, v *string) {
		t.Helper()
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: op, Name: name, Value: v}}, "ts")
		if err != nil || rs[0].Err != nil {
			t.Fatalf("alter %s: %v %v", name, err, rs[0].Err)
		}
	}
	alter(kadm.SetConfig, "message.timestamp.type", &lat)
	expect("2 hours old, LogAppendTime", now.Add(-2*time.Hour), nil)
	alter(kadm.DeleteConfig, "message.timestamp.type", nil)
	expect("2 hours old, CreateTime again", now.Add(-2*time.Hour), kerr.InvalidTimestamp)

	// Bounds back at their default: the deprecated difference.max.ms bounds both sides
	// (AlterConfigs replaces the whole set).
	rs, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "message.timestamp.difference.max.ms", Value: &hour}}, "ts")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter: %v %v", err, rs[0].Err)
	}
	expect("2 minutes ahead, difference 1 hour", now.Add(2*time.Minute), nil)
	expect("2 hours ahead, difference 1 hour", now.Add(2*time.Hour), kerr.InvalidTimestamp)
	expect("2 hours old, difference 1 hour", now.Add(-2*time.Hour), kerr.InvalidTimestamp)
	// A bound set explicitly wins over it.
	day := "86400000"
	alter(kadm.SetConfig, "message.timestamp.before.max.ms", &day)
	expect("2 hours old, before 1 day", now.Add(-2*time.Hour), nil)
	expect("2 hours ahead, after from difference", now.Add(2*time.Hour), kerr.InvalidTimestamp)
	alter(kadm.DeleteConfig, "message.timestamp.difference.max.ms", nil)
	expect("2 hours ahead, no bound", now.Add(2*time.Hour), nil)

	minus := "-1"
	for _, name := range []string{"message.timestamp.before.max.ms", "message.timestamp.after.max.ms", "message.timestamp.difference.max.ms"} {
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: name, Value: &minus}}, "ts")
		if err != nil || !errors.Is(rs[0].Err, kerr.InvalidConfig) {
			t.Fatalf("%s=-1: %v %v, want INVALID_CONFIG", name, err, rs[0].Err)
		}
	}
}

// rawBatch builds an uncompressed RecordBatch v2 with one record per timestamp delta
// (which may be negative, as Kafka allows); maxTimestamp is the largest.
func rawBatch(base int64, deltas []int64) []byte {
	rb := kmsg.NewRecordBatch()
	rb.Magic = 2
	rb.LastOffsetDelta = int32(len(deltas) - 1)
	rb.FirstTimestamp, rb.MaxTimestamp = base, base
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = -1, -1, -1
	rb.NumRecords = int32(len(deltas))
	var recs []byte
	for i, d := range deltas {
		rb.MaxTimestamp = max(rb.MaxTimestamp, base+d)
		r := kmsg.NewRecord()
		r.OffsetDelta = int32(i)
		r.TimestampDelta64 = d
		r.Value = []byte("v")
		r.Length = int32(len(r.AppendTo(nil)) - 1) // the length excludes its own (1-byte, 0) varint
		recs = r.AppendTo(recs)
	}
	rb.Records = recs
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}
