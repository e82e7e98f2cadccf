package streaming

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A topic the metadata briefly answers with an error (leader election) plans batches
// without its partitions. The checkpoint must still know where they ended: a restart
// right after such a batch read them again from the log start (duplicates).
func TestRestartAfterTopicBrieflyUnavailable(t *testing.T) {
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(1, "events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	host, port, _ := net.SplitHostPort(addrs[0])
	p, _ := strconv.Atoi(port)
	var unavailable atomic.Bool
	var refused atomic.Int64
	c.ControlKey(int16(kmsg.Metadata), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !unavailable.Load() {
			return nil, nil, false
		}
		refused.Add(1)
		req := kr.(*kmsg.MetadataRequest)
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = c.CurrentNode(), host, int32(p)
		resp.Brokers = append(resp.Brokers, b)
		resp.ControllerID = c.CurrentNode()
		for _, rt := range req.Topics {
			st := kmsg.NewMetadataResponseTopic()
			st.Topic = rt.Topic
			st.ErrorCode = 5 // LEADER_NOT_AVAILABLE
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	produce(t, addrs, 1, 0, 5)
	dir := t.TempDir()
	col := newCollected()
	opts := engineOpts(addrs, dir)
	opts.OnBatch = col.onBatch
	e := startEngine(t, collectJob(col, 10*time.Millisecond), opts)
	col.waitTotal(t, e, 5)
	unavailable.Store(true)
	// Wait for batches planned while the topic was unavailable.
	deadline := time.After(10 * time.Second)
	for n := 0; ; {
		col.mu.Lock()
		n = len(col.batches)
		col.mu.Unlock()
		if refused.Load() > 0 {
			want := n + 2
			for n < want {
				select {
				case <-col.signal:
				case <-deadline:
					t.Fatal("no batch committed while the topic was unavailable")
				}
				col.mu.Lock()
				n = len(col.batches)
				col.mu.Unlock()
			}
			break
		}
		select {
		case <-col.signal:
		case <-deadline:
			t.Fatal("no metadata request while the topic was unavailable")
		}
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	unavailable.Store(false)
	produce(t, addrs, 1, 5, 5)
	runEngine(t, collectJob(col, 10*time.Millisecond), opts, col, 10)
	assertExactlyOnce(t, col, map[int32]int64{0: 10})
	col.mu.Lock()
	defer col.mu.Unlock()
	if col.total != 10 {
		t.Fatalf("read %d records of 10", col.total)
	}
}
