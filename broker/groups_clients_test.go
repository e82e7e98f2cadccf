package broker

// Consumer groups with kafka-go's Reader and sarama's ConsumerGroup (range and
// round-robin): three members share six partitions, every record read exactly once.

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
)

type groupMember func(t *testing.T, addr, group, topic string, d *cutDialer, got func(partition int32, value []byte)) (stop func())

// netDialer adapts cutDialer to sarama's proxy.Dialer.
type netDialer struct{ d *cutDialer }

func (n netDialer) Dial(network, addr string) (net.Conn, error) {
	return n.d.dial(context.Background(), network, addr)
}

func kafkaGoMember(t *testing.T, addr, group, topic string, d *cutDialer, got func(int32, []byte)) func() {
	dialer := &kafka.Dialer{Timeout: 5 * time.Second, DialFunc: d.dial}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, GroupID: group, Topic: topic, Dialer: dialer,
		StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond, SessionTimeout: 2 * time.Second,
		HeartbeatInterval: 200 * time.Millisecond, RebalanceTimeout: 5 * time.Second, JoinGroupBackoff: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				return
			}
			got(int32(m.Partition), m.Value)
		}
	}()
	return func() { cancel(); <-done; r.Close() }
}

type saramaHandler struct{ got func(int32, []byte) }

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.got(m.Partition, m.Value)
		s.MarkMessage(m, "")
	}
	return nil
}

func saramaMember(strategy sarama.BalanceStrategy) groupMember {
	return func(t *testing.T, addr, group, topic string, d *cutDialer, got func(int32, []byte)) func() {
		cfg := saramaConfig("none")
		cfg.Net.Proxy.Enable, cfg.Net.Proxy.Dialer = true, netDialer{d}
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
		cfg.Consumer.Group.Session.Timeout = 2 * time.Second
		cfg.Consumer.Group.Heartbeat.Interval = 200 * time.Millisecond
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{strategy}
		cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{topic}, saramaHandler{got}); err != nil {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
		return func() { cancel(); <-done; cg.Close() }
	}
}

func TestClientGroupsSharePartitionsExactlyOnce(t *testing.T) {
	impls := []struct {
		name   string
		member groupMember
	}{
		{"kafka-go", kafkaGoMember},
		{"sarama-range", saramaMember(sarama.NewBalanceStrategyRange())},
		{"sarama-roundrobin", saramaMember(sarama.NewBalanceStrategyRoundRobin())},
	}
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			b := startBroker(t, groupTestOptions(t))
			addr := b.Addr()
			_, adm := newAdmin(t, addr)
			ctx := testCtx(t)
			if r, err := adm.CreateTopic(ctx, 6, 1, nil, "shared"); err != nil || r.Err != nil {
				t.Fatal(err, r.Err)
			}
			var mu sync.Mutex
			counts := map[int]int{}
			parts := map[int]map[int32]bool{}
			var stops []func()
			var dialers []*cutDialer
			for i := 0; i < 3; i++ {
				i := i
				parts[i] = map[int32]bool{}
				d := &cutDialer{}
				dialers = append(dialers, d)
				stops = append(stops, impl.member(t, addr, "g-"+impl.name, "shared", d, func(p int32, v []byte) {
					n, _ := strconv.Atoi(string(v))
					mu.Lock()
					counts[n]++
					parts[i][p] = true
					mu.Unlock()
				}))
			}
			defer func() {
				for _, s := range stops {
					s()
				}
			}()
			waitFor(t, "3 stable members owning 6 partitions", func() bool {
				gs, err := adm.DescribeGroups(ctx, "g-"+impl.name)
				if err != nil {
					return false
				}
				g := gs["g-"+impl.name]
				assigned := 0
				for _, m := range g.Members {
					if ca, ok := m.Assigned.AsConsumer(); ok {
						for _, tp := range ca.Topics {
							assigned += len(tp.Partitions)
						}
					}
				}
				return g.State == "Stable" && len(g.Members) == 3 && assigned == 6
			})
			produceSeq(t, addr, "shared", 0, 300)
			waitFor(t, "300 records", func() bool { mu.Lock(); defer mu.Unlock(); return len(counts) == 300 })
			mu.Lock()
			defer mu.Unlock()
			for n, c := range counts {
				if c != 1 {
					t.Fatalf("record %d consumed %d times", n, c)
				}
			}
			for i := 0; i < 3; i++ {
				if len(parts[i]) != 2 {
					t.Fatalf("member %d read partitions %v, want 2", i, parts[i])
				}
			}
			// The committed offsets reach the end (kadm's Lag is computed from them).
			mu.Unlock()
			waitFor(t, "lag 0", func() bool {
				lag, err := adm.Lag(ctx, "g-"+impl.name)
				if err != nil {
					return false
				}
				var total int64
				ok := true
				lag.Each(func(l kadm.DescribedGroupLag) {
					total += l.Lag.Total()
					ok = ok && l.Error() == nil
				})
				return ok && total == 0
			})
			// Member 0 dies without leaving; after its session expires the others take
			// over its partitions from the committed offsets: nothing is lost.
			dialers[0].cutNow()
			produceSeq(t, addr, "shared", 300, 600)
			waitFor(t, "600 records after failover", func() bool { mu.Lock(); defer mu.Unlock(); return len(counts) == 600 })
			mu.Lock()
			for n := 0; n < 300; n++ {
				if counts[n] != 1 {
					t.Fatalf("record %d from before the failover consumed %d times", n, counts[n])
				}
			}
		})
	}
}
