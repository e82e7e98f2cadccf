package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tagpipe/tagpipe/broker/storage"
)

// compactedRecord is one record read back from a compacted topic.
type compactedRecord struct {
	offset     int64
	key, value string
	tombstone  bool
}

// readCompacted reads partition 0 of topic from the start to its high watermark with
// franz-go and returns every record.
func readCompacted(t *testing.T, addr, topic string) []compactedRecord {
	t.Helper()
	ctx := testCtx(t)
	cl, adm := newAdmin(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	var out []compactedRecord
	for len(out) == 0 || out[len(out)-1].offset < end.Offset-1 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, compactedRecord{r.Offset, string(r.Key), string(r.Value), r.Value == nil})
		})
	}
	return out
}

// TestCompactedTopic: a topic created with cleanup.policy=compact keeps, after the log
// cleaner's pass, exactly the newest record per key of its closed segments, at their
// original offsets, in every codec (the cleaner rewrites compressed batches it shortens
// with their own codec, and franz-go and kafka-go read them); records without a key are
// refused with INVALID_RECORD; a tombstone stays for delete.retention.ms and then goes
// with the key; and the compacted log survives a restart.
func TestCompactedTopic(t *testing.T) {
	clock := &shiftClock{}
	o := testOptions(t)
	o.CleanerBackoff = -1
	o.Now = clock.now
	b := startBroker(t, o)
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			ctx := testCtx(t)
			topic := "compacted-" + codec
			cl, adm := newAdmin(t, b.Addr(), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgoCodec(codec)),
				kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
			// segment.bytes=100: a segment per batch; min.cleanable.dirty.ratio=0.1: a
			// few new segments next to the cleaned ones are enough for a pass.
			compact, small, ratio := "compact", "100", "0.1"
			configs := map[string]*string{"cleanup.policy": &compact, "segment.bytes": &small, "min.cleanable.dirty.ratio": &ratio}
			if _, err := adm.CreateTopic(ctx, 1, 1, configs, topic); err != nil {
				t.Fatal(err)
			}
			if c := configOf(t, adm, topic, "cleanup.policy"); c.MaybeValue() != "compact" {
				t.Fatalf("cleanup.policy %q", c.MaybeValue())
			}
			newest := map[string]int64{} // key -> offset of its newest record
			produce := func(recs ...*kgo.Record) {
				t.Helper()
				rs, err := cl.ProduceSync(ctx, recs...).First()
				if err != nil {
					t.Fatal(err)
				}
				for i, r := range recs {
					newest[string(r.Key)] = rs.Offset + int64(i)
				}
			}
			// 20 rounds of the same 10 keys, a batch (and with segment.bytes=100 a
			// segment) each.
			for round := range 20 {
				var recs []*kgo.Record
				for k := range 10 {
					recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "user-%d", k), Value: fmt.Appendf(nil, "tags of user-%d, round %d", k, round)})
				}
				produce(recs...)
			}
			// Two more keys, each a segment of its own: the second stays in the active
			// segment, which the cleaner never touches.
			produce(&kgo.Record{Key: []byte("s1"), Value: []byte("x")})
			produce(&kgo.Record{Key: []byte("s2"), Value: []byte("x")})

			err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("no key")}).FirstErr()
			if !errors.Is(err, kerr.InvalidRecord) {
				t.Fatalf("keyless record to a compacted topic: %v, want INVALID_RECORD", err)
			}
			if n, err := b.CompactLogs(); err != nil || n != 190 {
				t.Fatalf("cleaner removed %d records (%v), want 190", n, err)
			}
			check := func(what string, got []compactedRecord, want map[string]int64) {
				t.Helper()
				if len(got) != len(want) {
					t.Fatalf("%s: %d records, want %d: %v", what, len(got), len(want), got)
				}
				for i, r := range got {
					if off, ok := want[r.key]; !ok || off != r.offset || (i > 0 && r.offset <= got[i-1].offset) {
						t.Fatalf("%s: record %+v, want the newest of its key at offset %d", what, r, off)
					}
				}
			}
			check("after the cleaner", readCompacted(t, b.Addr(), topic), newest)

			// kafka-go reads the compacted log too (offset gaps, cleaned batches).
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr()}, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
			defer r.Close()
			for i := range len(newest) {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if newest[string(m.Key)] != m.Offset {
					t.Fatalf("kafka-go message %d: key %s at offset %d, want %d", i, m.Key, m.Offset, newest[string(m.Key)])
				}
			}

			// A tombstone stays for delete.retention.ms (a day by default) ...
			produce(&kgo.Record{Key: []byte("user-0")}) // null value: delete user-0
			produce(&kgo.Record{Key: []byte("s3"), Value: []byte("x")})
			produce(&kgo.Record{Key: []byte("s4"), Value: []byte("x")})
			if _, err := b.CompactLogs(); err != nil {
				t.Fatal(err)
			}
			got := readCompacted(t, b.Addr(), topic)
			check("with a tombstone", got, newest)
			for _, r := range got {
				if r.key == "user-0" && !r.tombstone {
					t.Fatalf("user-0 after its tombstone: %+v", r)
				}
			}
			// ... and goes, with its key, once that is over.
			one := "1000"
			if rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "delete.retention.ms", Value: &one}}, topic); err != nil || rs[0].Err != nil {
				t.Fatal(err, rs)
			}
			clock.advance(2 * time.Second)
			produce(&kgo.Record{Key: []byte("s5"), Value: []byte("x")}) // something dirty to clean
			produce(&kgo.Record{Key: []byte("s6"), Value: []byte("x")})
			if _, err := b.CompactLogs(); err != nil {
				t.Fatal(err)
			}
			delete(newest, "user-0")
			check("after delete.retention.ms", readCompacted(t, b.Addr(), topic), newest)
		})
	}

	// The cleaned logs are what a restarted broker serves.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before := readCompacted(t, b.Addr(), "compacted-zstd")
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	b2 := startBroker(t, o)
	if after := readCompacted(t, b2.Addr(), "compacted-zstd"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("after restart:\n%v\nbefore:\n%v", after, before)
	}
}

// TestCleanupPolicyConfig: cleanup.policy takes delete, compact or both; compact alone
// turns time and size retention off (as in Kafka); anything else is INVALID_CONFIG.
func TestCleanupPolicyConfig(t *testing.T) {
	b := startBroker(t, testOptions(t))
	_, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	for _, c := range []struct {
		policy        string
		ok, compacted bool
		retentionMS   int64
	}{
		{"delete", true, false, 604800000},
		{"compact", true, true, -1},
		{"compact,delete", true, true, 604800000},
		{"delete, compact", true, true, 604800000},
		{"compaction", false, false, 0},
		{"compact,compaction", false, false, 0},
		{"", false, false, 0},
	} {
		topic := fmt.Sprintf("policy-%d", len(c.policy))
		_, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &c.policy}, topic)
		if !c.ok {
			if !errors.Is(err, kerr.InvalidConfig) {
				t.Fatalf("cleanup.policy %q: %v, want INVALID_CONFIG", c.policy, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("cleanup.policy %q: %v", c.policy, err)
		}
		so := b.partition(topic, 0).log.Options()
		if so.Compact != c.compacted || so.RetentionMS != c.retentionMS || so.MaxCompactionLagMS != 0 {
			t.Fatalf("cleanup.policy %q: compact %v retention.ms %d max lag %d (Kafka's default is no bound)", c.policy, so.Compact, so.RetentionMS, so.MaxCompactionLagMS)
		}
		if _, err := adm.DeleteTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCompactedTopicKafkaGoSnappy: kafka-go writes snappy in the xerial framing; the
// cleaner writes a batch it shortens back in that framing, and both clients read it.
func TestCompactedTopicKafkaGoSnappy(t *testing.T) {
	o := testOptions(t)
	o.CleanerBackoff = -1
	b := startBroker(t, o)
	ctx := testCtx(t)
	_, adm := newAdmin(t, b.Addr())
	compact, small := "compact", "100"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &compact, "segment.bytes": &small}, "xerial"); err != nil {
		t.Fatal(err)
	}
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: "xerial", Balancer: &kafka.LeastBytes{}, Compression: kafka.Snappy,
		Transport: tr, RequiredAcks: kafka.RequireAll, BatchSize: 100, BatchTimeout: time.Millisecond}
	defer w.Close()
	// Each call is one batch: user-0..3 in rounds 0–4, then user-0..1 alone (so the
	// round-4 batch loses two records and is rewritten), then two sentinels.
	write := func(msgs ...kafka.Message) {
		t.Helper()
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 5 {
		var msgs []kafka.Message
		for k := range 4 {
			msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "user-%d", k), Value: fmt.Appendf(nil, "round %d", round)})
		}
		write(msgs...)
	}
	write(kafka.Message{Key: []byte("user-0"), Value: []byte("last")}, kafka.Message{Key: []byte("user-1"), Value: []byte("last")})
	write(kafka.Message{Key: []byte("s1"), Value: []byte("x")})
	write(kafka.Message{Key: []byte("s2"), Value: []byte("x")})
	if n, err := b.CompactLogs(); err != nil || n != 18 {
		t.Fatalf("cleaner removed %d records (%v), want 18", n, err)
	}
	got := readCompacted(t, b.Addr(), "xerial")
	want := "[{18 user-2 round 4 false} {19 user-3 round 4 false} {20 user-0 last false} {21 user-1 last false} {22 s1 x false} {23 s2 x false}]"
	if fmt.Sprint(got) != want {
		t.Fatalf("after the cleaner:\n got %v\nwant %s", got, want)
	}
	// The rewritten round-4 batch is still snappy in the xerial framing.
	r, err := b.partition("xerial", 0).log.Read(18, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	batch, _ := r.Bytes()
	r.Close()
	h, _, err := storage.ParseBatch(batch, 0)
	if err == nil || h.Compression() != 2 || !bytes.HasPrefix(batch[storage.BatchHeaderSize:], []byte("\x82SNAPPY\x00")) {
		t.Fatalf("cleaned batch: codec %d, records %q…, parse %v (a cleaned batch has fewer records than offsets)", h.Compression(), batch[storage.BatchHeaderSize:][:8], err)
	}
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr()}, Topic: "xerial", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer rd.Close()
	for _, want := range got {
		m, err := rd.ReadMessage(ctx)
		if err != nil || m.Offset != want.offset || string(m.Value) != want.value {
			t.Fatalf("kafka-go read %d %s (%v), want %+v", m.Offset, m.Value, err, want)
		}
	}
}

// TestCleanerConfigsChecked: the cleaner's topic configs are range-checked.
func TestCleanerConfigsChecked(t *testing.T) {
	for _, c := range []struct{ name, value string }{
		{"min.cleanable.dirty.ratio", "NaN"}, {"min.cleanable.dirty.ratio", "1.5"}, {"min.cleanable.dirty.ratio", "x"},
		{"delete.retention.ms", "-1"}, {"min.compaction.lag.ms", "-5"}, {"max.compaction.lag.ms", "0"},
	} {
		if err := validateConfig(c.name, &c.value); err == nil {
			t.Errorf("%s=%s accepted", c.name, c.value)
		}
	}
	for _, c := range []struct{ name, value string }{
		{"min.cleanable.dirty.ratio", "0"}, {"min.cleanable.dirty.ratio", "0.99"}, {"delete.retention.ms", "0"},
	} {
		if err := validateConfig(c.name, &c.value); err != nil {
			t.Errorf("%s=%s: %v", c.name, c.value, err)
		}
	}
}
