package kafkasec_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/internal/kafkasec"
)

// sameArray says whether a and b are slices of one array.
func sameArray(a, b []byte) bool {
	return cap(a) > 0 && cap(b) > 0 && &a[:cap(a)][cap(a)-1] == &b[:cap(b)][cap(b)-1]
}

// With buffers, a Conn reads each response into the buffer the last one (on it or
// another Conn) handed back; without, into a new one.
func TestResponseBuffersReused(t *testing.T) {
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var s *kafkasec.Security // PLAINTEXT
	fetch := func(conn *kafkasec.Conn) []byte {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxBytes = 11, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := kmsg.NewPtrFetchResponse()
		if err := conn.RoundTrip(ctx, req, resp); err != nil {
			t.Fatal(err)
		}
		b := resp.Topics[0].Partitions[0].RecordBatches
		if !bytes.Contains(b, []byte("v")) {
			t.Fatalf("fetched %q", b)
		}
		return b
	}
	dial := func(bufs *kafkasec.ResponseBuffers) *kafkasec.Conn {
		conn, err := s.Dial(ctx, addr, "buffers-test")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if bufs != nil {
			conn.UseBuffers(bufs)
		}
		return conn
	}

	bufs := kafkasec.NewResponseBuffers(2)
	a, b := dial(bufs), dial(bufs)
	first := fetch(a)
	if second := fetch(a); !sameArray(first, second) {
		t.Fatal("the next response on a Conn is not read into the last one's buffer")
	}
	// a holds its buffer until it is released: b gets another, then a's once released.
	if other := fetch(b); sameArray(first, other) {
		t.Fatal("a buffer in use by a Conn was lent to another")
	}
	a.Release()
	if again := fetch(dial(bufs)); !sameArray(first, again) {
		t.Fatal("a buffer handed back was not reused by another Conn")
	}

	plain := dial(nil)
	if x, y := fetch(plain), fetch(plain); sameArray(x, y) {
		t.Fatal("a Conn without buffers reused a response's bytes")
	}
}
