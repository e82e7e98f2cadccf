package broker

// compression.type (broker-side re-encoding) through real clients.

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/storage"
)

// fetchedCodecs fetches a partition from offset 0 with a raw Fetch and returns the codec
// of every batch, each checked (CRC, length, record count).
func fetchedCodecs(t *testing.T, cl *kgo.Client, topic string, partition int32) []storage.BatchHeader {
	t.Helper()
	resp, err := fetchReq(topic, partition, 0, 0).RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch response: %+v", resp)
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	var out []storage.BatchHeader
	for b := p.RecordBatches; len(b) > 0; {
		h, n, err := storage.ParseBatch(b, 0)
		if err != nil {
			t.Fatalf("fetched batch %d: %v", len(out), err)
		}
		out = append(out, h)
		b = b[n:]
	}
	return out
}

// TestCompressionTypeClients: franz-go produces snappy into topics with
// compression.type=zstd (set at CreateTopic, or with AlterTopicConfigs), and into topics
// with each other codec (zstd into snappy); a raw Fetch shows batches in the topic's
// codec that kept the producer's id and sequence; franz-go, kafka-go and sarama read
// every record back. Deleting the config stores the next batches as sent.
func TestCompressionTypeClients(t *testing.T) {
	b := startBroker(t, testOptions(t))
	addr := b.Addr()
	cl, adm := newAdmin(t, addr)
	ctx := testCtx(t)
	zstd := "zstd"
	const parts, n = 2, 300
	if r, err := adm.CreateTopic(ctx, parts, 1, map[string]*string{"compression.type": &zstd}, "ct.create"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	if r, err := adm.CreateTopic(ctx, parts, 1, nil, "ct.alter"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	if c := configOf(t, adm, "ct.alter", "compression.type"); c.MaybeValue() != "producer" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("default compression.type: %q source %v", c.MaybeValue(), c.Source)
	}
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "compression.type", Value: &zstd}}, "ct.alter")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter: %v %v", err, rs[0].Err)
	}
	// The other codecs, set at CreateTopic; snappy gets zstd batches to re-encode.
	type target struct {
		topic, codec, sent string
		id                 int8
	}
	targets := []target{{"ct.create", "zstd", "snappy", 4}, {"ct.alter", "zstd", "snappy", 4}}
	for _, c := range []struct {
		codec, sent string
		id          int8
	}{{"uncompressed", "snappy", 0}, {"gzip", "snappy", 1}, {"snappy", "zstd", 2}, {"lz4", "snappy", 3}} {
		topic := "ct." + c.codec
		if r, err := adm.CreateTopic(ctx, parts, 1, map[string]*string{"compression.type": &c.codec}, topic); err != nil || r.Err != nil {
			t.Fatalf("create: %v %v", err, r.Err)
		}
		targets = append(targets, target{topic, c.codec, c.sent, c.id})
	}
	for _, tg := range targets {
		topic := tg.topic
		t.Run(topic, func(t *testing.T) {
			if c := configOf(t, adm, topic, "compression.type"); c.MaybeValue() != tg.codec || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
				t.Fatalf("compression.type: %q source %v", c.MaybeValue(), c.Source)
			}
			ss := kgoImpl.produce(t, addr, topic, tg.sent, true, n)
			lo, err := adm.ListEndOffsets(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			ends := map[int32]int64{}
			lo.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
			for p := int32(0); p < parts; p++ {
				hs := fetchedCodecs(t, cl, topic, p)
				if len(hs) == 0 {
					t.Fatalf("partition %d: nothing fetched", p)
				}
				for _, h := range hs {
					if h.Compression() != int(tg.id) {
						t.Fatalf("partition %d: batch at %d has codec %d, want %s (%d)", p, h.BaseOffset, h.Compression(), tg.codec, tg.id)
					}
					if h.ProducerID < 0 || h.BaseSequence < 0 { // franz-go is idempotent by default
						t.Fatalf("partition %d: batch at %d lost its producer: id %d sequence %d", p, h.BaseOffset, h.ProducerID, h.BaseSequence)
					}
				}
			}
			for _, impl := range []clientImpl{kgoImpl, kafkaGoImpl, saramaImpl} {
				t.Run(impl.name, func(t *testing.T) {
					checkRoundTrip(t, kgoImpl, topic, ss, impl.consume(t, addr, topic, parts, ends), parts, true)
				})
			}
		})
	}

	// --delete-config: back to producer, the next batches are stored snappy.
	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "compression.type"}}, "ct.alter")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("delete config: %v %v", err, rs[0].Err)
	}
	if c := configOf(t, adm, "ct.alter", "compression.type"); c.MaybeValue() != "producer" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("compression.type after delete: %q source %v", c.MaybeValue(), c.Source)
	}
	kgoImpl.produce(t, addr, "ct.alter", "snappy", false, 10)
	for p := int32(0); p < parts; p++ {
		hs := fetchedCodecs(t, cl, "ct.alter", p)
		if last := hs[len(hs)-1]; last.Compression() != 2 {
			t.Fatalf("partition %d: batch after delete-config has codec %d, want snappy (2)", p, last.Compression())
		}
	}
}

// TestCompressionTypeTransactions: transactions into a topic that re-encodes commit and
// abort as elsewhere; read_committed sees the committed records only.
func TestCompressionTypeTransactions(t *testing.T) {
	b := startBroker(t, testOptions(t))
	_, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	lz4 := "lz4"
	if r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"compression.type": &lz4}, "ct.txn"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	p := txnProducer(t, b.Addr(), "ct-txn", kgo.DefaultProduceTopic("ct.txn"), kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	produceTxn(t, ctx, p, true, "a", "b")
	produceTxn(t, ctx, p, false, "aborted")
	produceTxn(t, ctx, p, true, "c")
	if got := committedUpToEnd(t, ctx, p, b.Addr(), "ct.txn"); fmt.Sprint(got) != "[a b c]" {
		t.Fatalf("read_committed: %v", got)
	}
}

// TestCompressionTypeBrokerDefault: the broker's compression type (broker.compression_type)
// is every topic's default, shown as a static broker config; a topic's own
// compression.type=producer keeps batches as sent; an unknown broker value is refused
// at New.
func TestCompressionTypeBrokerDefault(t *testing.T) {
	o := testOptions(t)
	o.CompressionType = "lz4"
	b := startBroker(t, o)
	cl, adm := newAdmin(t, b.Addr(), kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	ctx := testCtx(t)
	producer := "producer"
	for topic, cfg := range map[string]map[string]*string{"ct.dflt": nil, "ct.asis": {"compression.type": &producer}} {
		if r, err := adm.CreateTopic(ctx, 1, 1, cfg, topic); err != nil || r.Err != nil {
			t.Fatalf("create %s: %v %v", topic, err, r.Err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(strings.Repeat("v", 200))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if c := configOf(t, adm, "ct.dflt", "compression.type"); c.Value == nil || *c.Value != "lz4" || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Fatalf("ct.dflt compression.type: %+v", c)
	}
	if hs := fetchedCodecs(t, cl, "ct.dflt", 0); len(hs) != 1 || hs[0].Compression() != 3 {
		t.Fatalf("ct.dflt batches: %+v, want one lz4 (3)", hs)
	}
	if hs := fetchedCodecs(t, cl, "ct.asis", 0); len(hs) != 1 || hs[0].Compression() != 2 {
		t.Fatalf("ct.asis batches: %+v, want one snappy (2), as sent", hs)
	}
	bad := testOptions(t)
	bad.CompressionType = "brotli"
	if _, err := New(bad); err == nil || !strings.Contains(err.Error(), "brotli") {
		t.Fatalf("New with compression type brotli: %v", err)
	}
}

// TestCompressionLevels: compression.gzip.level / lz4.level / zstd.level (KIP-390) are
// topic configs with Kafka's defaults and ranges; a gzip topic at level 1 and one at 9
// store the same snappy batch re-encoded to different sizes, both read back.
func TestCompressionLevels(t *testing.T) {
	b := startBroker(t, testOptions(t))
	cl, adm := newAdmin(t, b.Addr(), kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	ctx := testCtx(t)
	gz := "gzip"
	sizes := map[string]int32{}
	for _, level := range []string{"1", "9"} {
		topic := "ct.gzip" + level
		level := level
		if r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"compression.type": &gz, "compression.gzip.level": &level}, topic); err != nil || r.Err != nil {
			t.Fatalf("create %s: %v %v", topic, err, r.Err)
		}
		var recs []*kgo.Record
		for i := range 200 {
			recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "record %d of a batch that compresses %s", i, strings.Repeat("well ", i%7))})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, h := range fetchedCodecs(t, cl, topic, 0) {
			if h.Compression() != 1 {
				t.Fatalf("%s: a batch in codec %d, want gzip", topic, h.Compression())
			}
			sizes[level] += h.BatchLength
		}
		if got := consumeAll(t, b.Addr(), topic, 1)[0]; len(got) != 200 || string(got[199].Value) != string(recs[199].Value) {
			t.Fatalf("%s: read %d records back", topic, len(got))
		}
	}
	if sizes["1"] == sizes["9"] {
		t.Fatalf("gzip level 1 and 9 stored %d bytes each", sizes["1"])
	}
	if c := configOf(t, adm, "ct.gzip1", "compression.gzip.level"); c.Value == nil || *c.Value != "1" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("compression.gzip.level: %+v, want 1 (topic config)", c)
	}
	for name, want := range map[string]string{"compression.lz4.level": "9", "compression.zstd.level": "3"} {
		if c := configOf(t, adm, "ct.gzip1", name); c.Value == nil || *c.Value != want || c.Source != kmsg.ConfigSourceDefaultConfig {
			t.Fatalf("%s: %+v, want the default %s", name, c, want)
		}
	}
	for name, v := range map[string]string{"compression.gzip.level": "10", "compression.lz4.level": "0", "compression.zstd.level": "23"} {
		v := v
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: name, Value: &v}}, "ct.gzip1")
		if err != nil || !errors.Is(rs[0].Err, kerr.InvalidConfig) {
			t.Fatalf("%s=%s: %v %v, want INVALID_CONFIG", name, v, err, rs[0].Err)
		}
	}
}

// TestCompressionTypeRefusals: unknown values are INVALID_CONFIG at CreateTopics and
// AlterConfigs; a batch that outgrows max.message.bytes once re-encoded is
// MESSAGE_TOO_LARGE.
func TestCompressionTypeRefusals(t *testing.T) {
	b := startBroker(t, testOptions(t))
	cl, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	for _, v := range []string{"none", "ZSTD", "brotli", ""} {
		v := v
		r, _ := adm.CreateTopic(ctx, 1, 1, map[string]*string{"compression.type": &v}, "ct.bad") // the error is r.Err
		if !errors.Is(r.Err, kerr.InvalidConfig) {
			t.Fatalf("create with compression.type=%q: %v, want INVALID_CONFIG", v, r.Err)
		}
	}
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "ct.small"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	bad := "gzip2"
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "compression.type", Value: &bad}}, "ct.small")
	if err != nil || !errors.Is(rs[0].Err, kerr.InvalidConfig) || !strings.Contains(rs[0].ErrMessage, "zstd") {
		t.Fatalf("alter to %q: %v %v (%q), want INVALID_CONFIG listing the values", bad, err, rs[0].Err, rs[0].ErrMessage)
	}
	unc, small := "uncompressed", "20000"
	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "compression.type", Value: &unc}, {Name: "max.message.bytes", Value: &small}}, "ct.small")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter: %v %v", err, rs[0].Err)
	}
	// 40 KB of records, a few hundred bytes in zstd: fits as sent, not uncompressed.
	p, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("ct.small"), kgo.ProducerBatchCompression(kgo.ZstdCompression()),
		kgo.ProducerLinger(0), kgo.RecordRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	err = p.ProduceSync(ctx, &kgo.Record{Value: []byte(strings.Repeat("compressible ", 3000))}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("produce: %v, want MESSAGE_TOO_LARGE", err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("small")}).FirstErr(); err != nil {
		t.Fatalf("produce a small record: %v", err)
	}
	if hs := fetchedCodecs(t, cl, "ct.small", 0); len(hs) != 1 || hs[0].Compression() != 0 {
		t.Fatalf("stored: %+v, want one uncompressed batch", hs)
	}
}
