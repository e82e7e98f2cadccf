package broker

// One test body, several real Kafka clients (franz-go kgo, segmentio/kafka-go, IBM/sarama):
// each produces keyed and round-robin records with every codec and reads them back.

import (
	"bytes"
	"fmt"
	"log"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var codecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// sent is one produced record; partition is -1 when the client does not report it.
type sent struct {
	key       string
	seq       int
	partition int32
}

// got is one consumed record.
type got struct {
	key       string
	seq       int
	partition int32
	offset    int64
}

type clientImpl struct {
	name    string
	produce func(t *testing.T, addr, topic, codec string, keyed bool, n int) []sent
	consume func(t *testing.T, addr, topic string, partitions int32, ends map[int32]int64) []got
	// keyPartition is the partition the client's default key hashing picks.
	keyPartition func(topic, key string, n int32) int32
}

func value(seq int) []byte { return []byte(fmt.Sprintf("%06d-%s", seq, strings.Repeat("v", 80))) }

func parseSeq(t *testing.T, v []byte) int {
	s, _, _ := strings.Cut(string(v), "-")
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("bad value %q", v)
	}
	return n
}

func keyOf(i int) string { return "user-" + strconv.Itoa(i%17) }

// murmur2 is Kafka's default key hash (Utils.murmur2), written from its definition to
// check the client and the broker agree with Java producers.
func murmur2(data []byte) uint32 {
	const seed, m, r = uint32(0x9747b28c), uint32(0x5bd1e995), 24
	h := seed ^ uint32(len(data))
	for len(data) >= 4 {
		k := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
		data = data[4:]
	}
	switch len(data) {
	case 3:
		h ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

func kgoCodec(c string) kgo.CompressionCodec {
	codec, _ := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}[c]
	return codec
}

var kgoImpl = clientImpl{
	name: "franz-go",
	produce: func(t *testing.T, addr, topic, codec string, keyed bool, n int) []sent {
		part := kgo.RoundRobinPartitioner()
		if keyed {
			part = kgo.StickyKeyPartitioner(nil)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(part),
			kgo.ProducerBatchCompression(kgoCodec(codec)), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = &kgo.Record{Value: value(i)}
			if keyed {
				recs[i].Key = []byte(keyOf(i))
			}
		}
		if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		out := make([]sent, n)
		for i, r := range recs {
			out[i] = sent{key: string(r.Key), seq: i, partition: r.Partition}
		}
		return out
	},
	consume: func(t *testing.T, addr, topic string, partitions int32, ends map[int32]int64) []got {
		offsets := map[int32]kgo.Offset{}
		want := 0
		for p := int32(0); p < partitions; p++ {
			offsets[p] = kgo.NewOffset().AtStart()
			want += int(ends[p])
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
			kgo.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var out []got
		ctx := testCtx(t)
		for len(out) < want {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("consumed %d of %d: %v", len(out), want, err)
			}
			fs.EachError(func(_ string, p int32, err error) { t.Fatalf("fetch partition %d: %v", p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				out = append(out, got{key: string(r.Key), seq: parseSeq(t, r.Value), partition: r.Partition, offset: r.Offset})
			})
		}
		return out
	},
	keyPartition: func(_, key string, n int32) int32 { return int32((murmur2([]byte(key)) & 0x7fffffff) % uint32(n)) },
}

var kafkaGoImpl = clientImpl{
	name: "kafka-go",
	produce: func(t *testing.T, addr, topic, codec string, keyed bool, n int) []sent {
		var bal kafka.Balancer = &kafka.RoundRobin{}
		if keyed {
			bal = &kafka.Hash{}
		}
		comp := map[string]kafka.Compression{"none": 0, "gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4, "zstd": kafka.Zstd}[codec]
		// A Transport of its own: the shared default one caches metadata from before the
		// topic existed.
		tr := &kafka.Transport{}
		defer tr.CloseIdleConnections()
		w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Balancer: bal, Compression: comp, Transport: tr,
			RequiredAcks: kafka.RequireAll, BatchSize: 100, BatchTimeout: 5 * time.Millisecond}
		defer w.Close()
		msgs := make([]kafka.Message, n)
		for i := range msgs {
			msgs[i] = kafka.Message{Value: value(i)}
			if keyed {
				msgs[i].Key = []byte(keyOf(i))
			}
		}
		if err := w.WriteMessages(testCtx(t), msgs...); err != nil {
			t.Fatalf("produce: %v", err)
		}
		out := make([]sent, n)
		for i, m := range msgs {
			out[i] = sent{key: string(m.Key), seq: i, partition: -1}
		}
		return out
	},
	consume: func(t *testing.T, addr, topic string, partitions int32, ends map[int32]int64) []got {
		var out []got
		ctx := testCtx(t)
		for p := int32(0); p < partitions; p++ {
			// The end offset through kafka-go's own ListOffsets.
			conn, err := kafka.DialLeader(ctx, "tcp", addr, topic, int(p))
			if err != nil {
				t.Fatal(err)
			}
			last, err := conn.ReadLastOffset()
			conn.Close()
			if err != nil {
				t.Fatal(err)
			}
			if last != ends[p] {
				t.Fatalf("partition %d: kafka-go last offset %d, kadm %d", p, last, ends[p])
			}
			if last == 0 {
				continue
			}
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: int(p), MaxWait: 100 * time.Millisecond})
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					r.Close()
					t.Fatalf("partition %d: %v", p, err)
				}
				out = append(out, got{key: string(m.Key), seq: parseSeq(t, m.Value), partition: int32(m.Partition), offset: m.Offset})
				if m.Offset == last-1 {
					break
				}
			}
			r.Close()
		}
		return out
	},
	keyPartition: func(topic, key string, n int32) int32 {
		parts := make([]int, n)
		for i := range parts {
			parts[i] = i
		}
		return int32((&kafka.Hash{}).Balance(kafka.Message{Topic: topic, Key: []byte(key)}, parts...))
	},
}

func saramaConfig(codec string) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Compression = map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
		"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}[codec]
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	return cfg
}

// lockedBuffer is a bytes.Buffer safe for sarama's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Reset()
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// saramaLogs is sarama's log, set once for the package: sarama's goroutines read the
// global Logger, some after their test (a closing broker connection), so it is never
// swapped while they run.
var saramaLogs = func() *lockedBuffer {
	b := &lockedBuffer{}
	sarama.Logger = log.New(b, "sarama ", log.Lmicroseconds)
	return b
}()

// saramaLog starts capturing sarama's log (its retries, reconnects and metadata
// refreshes) for the test and prints it if the test fails: a record produced twice by a
// non-idempotent client can only come from a retry, and the log says which answer or
// connection error caused it.
func saramaLog(t *testing.T) {
	saramaLogs.Reset()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sarama's log:\n%s", saramaLogs.String())
		}
	})
}

var saramaImpl = clientImpl{
	name: "sarama",
	produce: func(t *testing.T, addr, topic, codec string, keyed bool, n int) []sent {
		saramaLog(t)
		cfg := saramaConfig(codec)
		cfg.Producer.Partitioner = sarama.NewRoundRobinPartitioner
		if keyed {
			cfg.Producer.Partitioner = sarama.NewHashPartitioner
		}
		p, err := sarama.NewSyncProducer([]string{addr}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		msgs := make([]*sarama.ProducerMessage, n)
		for i := range msgs {
			msgs[i] = &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(value(i))}
			if keyed {
				msgs[i].Key = sarama.StringEncoder(keyOf(i))
			}
		}
		if err := p.SendMessages(msgs); err != nil {
			t.Fatalf("produce: %v", err)
		}
		out := make([]sent, n)
		for i, m := range msgs {
			k := ""
			if keyed {
				k = keyOf(i)
			}
			out[i] = sent{key: k, seq: i, partition: m.Partition}
		}
		return out
	},
	consume: func(t *testing.T, addr, topic string, partitions int32, ends map[int32]int64) []got {
		c, err := sarama.NewConsumer([]string{addr}, saramaConfig("none"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var out []got
		timeout := time.After(60 * time.Second)
		for p := int32(0); p < partitions; p++ {
			if ends[p] == 0 {
				continue
			}
			pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
			if err != nil {
				t.Fatal(err)
			}
			for done := false; !done; {
				select {
				case m := <-pc.Messages():
					out = append(out, got{key: string(m.Key), seq: parseSeq(t, m.Value), partition: m.Partition, offset: m.Offset})
					done = m.Offset == ends[p]-1
				case err := <-pc.Errors():
					t.Fatalf("partition %d: %v", p, err)
				case <-timeout:
					t.Fatalf("partition %d: timed out", p)
				}
			}
			pc.Close()
		}
		return out
	},
	keyPartition: func(topic, key string, n int32) int32 {
		p, err := sarama.NewHashPartitioner(topic).Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, n)
		if err != nil {
			panic(err)
		}
		return p
	},
}

func TestClientsProduceConsumeAllCodecs(t *testing.T) {
	b := startBroker(t, testOptions(t))
	addr := b.Addr()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	const parts, n = 3, 300
	for _, impl := range []clientImpl{kgoImpl, kafkaGoImpl, saramaImpl} {
		for _, codec := range codecs {
			for _, keyed := range []bool{true, false} {
				mode := "roundrobin"
				if keyed {
					mode = "keyed"
				}
				t.Run(impl.name+"/"+codec+"/"+mode, func(t *testing.T) {
					topic := strings.Join([]string{impl.name, codec, mode}, ".")
					if r, err := adm.CreateTopic(testCtx(t), parts, 1, nil, topic); err != nil || r.Err != nil {
						t.Fatalf("create: %v %v", err, r.Err)
					}
					ss := impl.produce(t, addr, topic, codec, keyed, n)
					lo, err := adm.ListEndOffsets(testCtx(t), topic)
					if err != nil {
						t.Fatal(err)
					}
					ends := map[int32]int64{}
					total := int64(0)
					lo.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset; total += o.Offset })
					if total != n {
						t.Fatalf("end offsets sum to %d, want %d: %v", total, n, ends)
					}
					gs := impl.consume(t, addr, topic, parts, ends)
					checkRoundTrip(t, impl, topic, ss, gs, parts, keyed)
				})
			}
		}
	}
}

func checkRoundTrip(t *testing.T, impl clientImpl, topic string, ss []sent, gs []got, parts int32, keyed bool) {
	t.Helper()
	if len(gs) != len(ss) {
		t.Fatalf("consumed %d records, produced %d", len(gs), len(ss))
	}
	bySeq := map[int]got{}
	perPart := map[int32][]got{}
	for _, g := range gs {
		if _, dup := bySeq[g.seq]; dup {
			t.Fatalf("record %d consumed twice", g.seq)
		}
		bySeq[g.seq] = g
		perPart[g.partition] = append(perPart[g.partition], g)
	}
	for _, s := range ss {
		g, ok := bySeq[s.seq]
		if !ok {
			t.Fatalf("record %d lost", s.seq)
		}
		if g.key != s.key {
			t.Fatalf("record %d: key %q, want %q", s.seq, g.key, s.key)
		}
		if s.partition >= 0 && g.partition != s.partition {
			t.Fatalf("record %d acked on partition %d, read from %d", s.seq, s.partition, g.partition)
		}
		if keyed {
			if want := impl.keyPartition(topic, s.key, parts); g.partition != want {
				t.Fatalf("record %d key %q on partition %d, the client's hash says %d", s.seq, s.key, g.partition, want)
			}
		}
	}
	for p, list := range perPart {
		sort.Slice(list, func(i, j int) bool { return list[i].offset < list[j].offset })
		for i, g := range list {
			if g.offset != int64(i) {
				t.Fatalf("partition %d: offset %d at position %d", p, g.offset, i)
			}
			if i > 0 && g.seq <= list[i-1].seq {
				t.Fatalf("partition %d: record %d after %d: order broken", p, g.seq, list[i-1].seq)
			}
		}
		if !keyed && len(list) != len(ss)/int(parts) {
			t.Fatalf("round-robin: partition %d has %d records, want %d", p, len(list), len(ss)/int(parts))
		}
	}
}
