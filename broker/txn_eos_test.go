package broker

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTxnGroupTransactSessionExactlyOnce: consume-transform-produce with franz-go's
// GroupTransactSession (topic A → topic B, offsets committed in the transaction), every
// third transaction aborted; a read_committed consumer of B sees each input exactly
// once.
func TestTxnGroupTransactSessionExactlyOnce(t *testing.T) {
	o := testOptions(t)
	o.Groups.InitialRebalanceDelay = 0
	groupTransactSessionExactlyOnce(t, o)
}

// The same with a KIP-848 consumer group (the broker assigns the partitions; the
// transactional offset commits carry the member epoch).
func TestTxnGroupTransactSessionConsumerProtocol(t *testing.T) {
	groupTransactSessionExactlyOnce(t, kip848Options(t), kgo.ServerSideBalancer(), kgo.Balancers(kgo.StickyBalancer()))
}

func groupTransactSessionExactlyOnce(t *testing.T, o Options, opts ...kgo.Opt) {
	ctx := testCtx(t)
	b := startBroker(t, o)
	addr := b.Addr()
	createTopic(t, ctx, addr, "A", 2)
	createTopic(t, ctx, addr, "B", 2)
	const n = 300
	in, _ := newAdmin(t, addr, kgo.DefaultProduceTopic("A"))
	for i := range n {
		if err := in.ProduceSync(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i % 7)), Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := kgo.NewGroupTransactSession(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.TransactionalID("eos"), kgo.ConsumerGroup("g"),
		kgo.ConsumeTopics("A"), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.DefaultProduceTopic("B"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(4000), kgo.FetchMaxWait(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	committed, aborted := 0, 0
	for txn := 0; committed < n && txn < 1000; txn++ {
		fs := sess.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out with %d committed", committed)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			t.Fatalf("fetch: %v", errs[0].Err)
		}
		if fs.NumRecords() == 0 {
			continue
		}
		abort := txn%3 == 2
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Key: r.Key, Value: append([]byte("out-"), r.Value...)}, func(_ *kgo.Record, err error) {
				if err != nil && !abort {
					t.Errorf("produce: %v", err)
				}
			})
		})
		ok, err := sess.End(ctx, kgo.TransactionEndTry(!abort))
		if err != nil {
			t.Fatalf("end: %v", err)
		}
		if ok && !abort {
			committed += fs.NumRecords()
		} else {
			aborted += fs.NumRecords()
		}
	}
	if aborted == 0 {
		t.Fatal("no transaction was aborted")
	}
	out, _ := newAdmin(t, addr, kgo.DefaultProduceTopic("B"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := range int32(2) {
		if err := out.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("end")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]int{}
	for p := range int32(2) {
		for _, v := range readPartitionUntil(t, ctx, addr, "B", p, "end") {
			got[v]++
		}
	}
	var bad []string
	for i := range n {
		if c := got[fmt.Sprint("out-", i)]; c != 1 {
			bad = append(bad, fmt.Sprintf("%d×%d", i, c))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 || len(got) != n {
		t.Fatalf("%d distinct outputs, want %d; not exactly once: %v", len(got), n, bad)
	}
}

// readPartitionUntil reads one partition read_committed until the value last.
func readPartitionUntil(t *testing.T, ctx context.Context, addr, topic string, p int32, last string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s never arrived in %s-%d", last, topic, p)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == last {
				done = true
			}
			if !done {
				out = append(out, string(r.Value))
			}
		})
		if done {
			return out
		}
	}
}

// TestTxnKill9: committed, aborted and open transactions survive kill -9 of a broker
// process with flush: always; the open one keeps the last stable offset until a new
// producer with its transactional id aborts it.
func TestTxnKill9(t *testing.T) {
	dir := t.TempDir()
	bp := startBrokerProc(t, dir, "TAGPIPE_BROKER_FLUSH=always")
	ctx := testCtx(t)
	createTopic(t, ctx, bp.addr, "t", 1)
	p := txnProducer(t, bp.addr, "k1")
	produceTxn(t, ctx, p, true, "c1")
	produceTxn(t, ctx, p, false, "a1")
	produceTxn(t, ctx, p, true, "c2")
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	bp.kill()
	p.Close()

	bp = startBrokerProc(t, dir, "TAGPIPE_BROKER_FLUSH=always")
	_, adm := newAdmin(t, bp.addr)
	lso, err := adm.ListCommittedOffsets(ctx, "t")
	if err != nil || lso["t"][0].Offset != 6 { // c1 m a1 m c2 m | open
		t.Fatalf("last stable offset after kill -9: %v %v", lso, err)
	}
	p2 := txnProducer(t, bp.addr, "k1")
	if got := committedUpToEnd(t, ctx, p2, bp.addr, "t"); fmt.Sprint(got) != "[c1 c2]" {
		t.Fatalf("read_committed after kill -9: %v", got)
	}
}
