package streaming

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeBroker answers Kafka requests on 127.0.0.1 with handle's responses (nil closes
// the connection), and records the requests.
type fakeBroker struct {
	t      *testing.T
	ln     net.Listener
	handle func(kmsg.Request) kmsg.Response

	mu    sync.Mutex
	reqs  []kmsg.Request
	dials int
	conns []net.Conn
	wg    sync.WaitGroup
}

func startFakeBroker(t *testing.T, handle func(kmsg.Request) kmsg.Response) *fakeBroker {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBroker{t: t, ln: ln, handle: handle}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dials++
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				b.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		b.closeConns()
		b.wg.Wait()
	})
	return b
}

func (b *fakeBroker) addr() string { return b.ln.Addr().String() }

// closeConns closes the open connections, as a broker does with idle ones.
func (b *fakeBroker) closeConns() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
	b.conns = nil
}

func (b *fakeBroker) requests() (reqs []kmsg.Request, dials int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]kmsg.Request(nil), b.reqs...), b.dials
}

func (b *fakeBroker) serve(c net.Conn) {
	for {
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		frame := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(c, frame); err != nil {
			return
		}
		r := kbin.Reader{Src: frame}
		key, version, corr := r.Int16(), r.Int16(), r.Int32()
		r.NullableString() // client id
		req := kmsg.RequestForKey(key)
		req.SetVersion(version)
		if req.IsFlexible() {
			kmsg.SkipTags(&r)
		}
		if err := req.ReadFrom(r.Src); err != nil {
			b.t.Errorf("cannot decode %s v%d request: %v", kmsg.NameForKey(key), version, err)
			return
		}
		b.mu.Lock()
		b.reqs = append(b.reqs, req)
		b.mu.Unlock()
		resp := b.handle(req)
		if resp == nil {
			return
		}
		resp.SetVersion(version)
		out := binary.BigEndian.AppendUint32(make([]byte, 4, 64), uint32(corr))
		if resp.IsFlexible() && key != kmsg.ApiVersions.Int16() {
			out = append(out, 1, 9, 2, 'h', 'i') // a header with one tagged field (tag 9)
		}
		out = resp.AppendTo(out)
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// versionsAnswer answers ApiVersions with Metadata v0–maxMetadata (and Produce), and
// Metadata with topic events (id 1, 2, …, 16) and an unknown topic gone.
func versionsAnswer(maxMetadata int16) func(kmsg.Request) kmsg.Response {
	return func(req kmsg.Request) kmsg.Response {
		switch req := req.(type) {
		case *kmsg.ApiVersionsRequest:
			resp := kmsg.NewPtrApiVersionsResponse()
			for _, k := range []struct{ key, max int16 }{{0, 9}, {3, maxMetadata}} {
				ak := kmsg.NewApiVersionsResponseApiKey()
				ak.ApiKey, ak.MaxVersion = k.key, k.max
				resp.ApiKeys = append(resp.ApiKeys, ak)
			}
			return resp
		case *kmsg.MetadataRequest:
			resp := kmsg.NewPtrMetadataResponse()
			for _, rt := range req.Topics {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = rt.Topic
				if *rt.Topic == "events" {
					mt.TopicID = [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
					mp := kmsg.NewMetadataResponseTopicPartition()
					mt.Partitions = append(mt.Partitions, mp)
				} else {
					mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
				}
				resp.Topics = append(resp.Topics, mt)
			}
			return resp
		}
		return nil
	}
}

// eventsID is versionsAnswer's id of events in Kafka's text form.
const eventsID = "AQIDBAUGBwgJCgsMDQ4PEA"

// A broker with topic ids: ApiVersions once per connection, then Metadata at the
// highest version both speak (v12 here, v10 for a Kafka 2.8), for the topics asked,
// without auto creation; ids of topics it knows, in Kafka's text form. The flexible
// response header's tagged fields are skipped.
func TestTopicIDsFromMetadata(t *testing.T) {
	for _, tc := range []struct {
		brokerMax, want int16
	}{{13, 12}, {12, 12}, {10, 10}} {
		b := startFakeBroker(t, versionsAnswer(tc.brokerMax))
		c := newTopicIDClient([]string{b.addr()}, nil, "test-client")
		defer c.close()
		for range 2 {
			ids := c.get(context.Background(), []string{"events", "gone"})
			if len(ids) != 1 || ids["events"] != eventsID {
				t.Fatalf("Metadata max v%d: ids %v, want events: %s", tc.brokerMax, ids, eventsID)
			}
		}
		reqs, dials := b.requests()
		if dials != 1 || len(reqs) != 3 {
			t.Fatalf("Metadata max v%d: %d connections, %d requests; want one connection, ApiVersions and 2 Metadata", tc.brokerMax, dials, len(reqs))
		}
		if _, ok := reqs[0].(*kmsg.ApiVersionsRequest); !ok {
			t.Fatalf("first request %T, want ApiVersions", reqs[0])
		}
		md := reqs[1].(*kmsg.MetadataRequest)
		if md.Version != tc.want || md.AllowAutoTopicCreation || len(md.Topics) != 2 || *md.Topics[0].Topic != "events" {
			t.Fatalf("Metadata max v%d: sent v%d auto-create %v topics %d, want v%d for events and gone without auto creation",
				tc.brokerMax, md.Version, md.AllowAutoTopicCreation, len(md.Topics), tc.want)
		}
	}
}

// A broker without topic ids (Metadata up to v8 or v9: Kafka before 2.8) is asked no
// Metadata; the answer is "unknown" and the broker is not asked again for a while.
func TestTopicIDsUnsupported(t *testing.T) {
	for _, max := range []int16{8, 9} {
		b := startFakeBroker(t, versionsAnswer(max))
		c := newTopicIDClient([]string{b.addr()}, nil, "test-client")
		defer c.close()
		if _, err := c.fetch(context.Background(), []string{"events"}); !errors.Is(err, errNoTopicIDs) {
			t.Fatalf("Metadata max v%d: fetch error %v, want errNoTopicIDs", max, err)
		}
		if ids := c.get(context.Background(), []string{"events"}); ids != nil {
			t.Fatalf("Metadata max v%d: ids %v, want none", max, ids)
		}
		if ids := c.get(context.Background(), []string{"events"}); ids != nil {
			t.Fatalf("Metadata max v%d: ids %v, want none", max, ids)
		}
		reqs, dials := b.requests()
		if dials != 2 || len(reqs) != 2 {
			t.Fatalf("Metadata max v%d: %d connections, %d requests; want two ApiVersions (fetch, then ids once)", max, dials, len(reqs))
		}
		for _, r := range reqs {
			if _, ok := r.(*kmsg.ApiVersionsRequest); !ok {
				t.Fatalf("Metadata max v%d: sent %T", max, r)
			}
		}
	}
	if _, err := pickMetadataVersion(nil); !errors.Is(err, errNoTopicIDs) {
		t.Fatalf("no Metadata key: %v, want errNoTopicIDs", err)
	}
}

// A failed request (the broker hangs up, or none listens) answers "unknown" and keeps
// the next calls from trying for topicIDBackoff; a connection the broker closed while
// idle is replaced within the call.
func TestTopicIDsFailure(t *testing.T) {
	hangUp := false
	var mu sync.Mutex
	answer := versionsAnswer(12)
	b := startFakeBroker(t, func(req kmsg.Request) kmsg.Response {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := req.(*kmsg.MetadataRequest); ok && hangUp {
			return nil
		}
		return answer(req)
	})
	now := time.Unix(1000, 0)
	c := newTopicIDClient([]string{"127.0.0.1:1", b.addr()}, nil, "test-client") // the first refuses
	c.now = func() time.Time { return now }
	defer c.close()
	if ids := c.get(context.Background(), []string{"events"}); ids["events"] != eventsID {
		t.Fatalf("ids %v through the second bootstrap broker", ids)
	}
	b.closeConns() // idle connection closed by the broker
	if ids := c.get(context.Background(), []string{"events"}); ids["events"] != eventsID {
		t.Fatalf("ids %v after the broker closed the connection", ids)
	}
	if _, dials := b.requests(); dials != 2 {
		t.Fatalf("%d connections, want 2", dials)
	}

	mu.Lock()
	hangUp = true
	mu.Unlock()
	if ids := c.get(context.Background(), []string{"events"}); ids != nil {
		t.Fatalf("ids %v from a broker that hung up", ids)
	}
	mu.Lock()
	hangUp = false
	mu.Unlock()
	_, dials := b.requests()
	if ids := c.get(context.Background(), []string{"events"}); ids != nil {
		t.Fatalf("ids %v asked for during the backoff", ids)
	}
	if _, d := b.requests(); d != dials {
		t.Fatal("asked the broker during the backoff")
	}
	now = now.Add(topicIDBackoff)
	if ids := c.get(context.Background(), []string{"events"}); ids["events"] != eventsID {
		t.Fatalf("ids %v after the backoff", ids)
	}
}

// A call is bounded: a broker that never answers costs at most topicIDTimeout, or
// less when the caller's context ends first.
func TestTopicIDsBounded(t *testing.T) {
	release := make(chan struct{})
	b := startFakeBroker(t, func(kmsg.Request) kmsg.Response { <-release; return nil })
	defer close(release)
	c := newTopicIDClient([]string{b.addr()}, nil, "test-client")
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if ids := c.get(ctx, []string{"events"}); ids != nil {
		t.Fatalf("ids %v from a broker that never answers", ids)
	}
	if d := time.Since(start); d > topicIDTimeout {
		t.Fatalf("call took %v", d)
	}
}

// When no bootstrap broker answers, the ids are asked of the cluster's other brokers
// that the last Metadata response listed.
func TestTopicIDsFromKnownBroker(t *testing.T) {
	var addrs []string // both brokers, listed in every Metadata response
	withBrokers := func(req kmsg.Request) kmsg.Response {
		resp := versionsAnswer(12)(req)
		if md, ok := resp.(*kmsg.MetadataResponse); ok {
			for i, a := range addrs {
				host, port, _ := net.SplitHostPort(a)
				p, _ := strconv.Atoi(port)
				mb := kmsg.NewMetadataResponseBroker()
				mb.NodeID, mb.Host, mb.Port = int32(i), host, int32(p)
				md.Brokers = append(md.Brokers, mb)
			}
		}
		return resp
	}
	seed, other := startFakeBroker(t, withBrokers), startFakeBroker(t, withBrokers)
	addrs = []string{seed.addr(), other.addr()}
	c := newTopicIDClient([]string{seed.addr()}, nil, "test-client")
	defer c.close()
	if ids := c.get(context.Background(), []string{"events"}); ids["events"] != eventsID {
		t.Fatalf("ids %v from the bootstrap broker", ids)
	}
	seed.ln.Close() // the bootstrap broker goes down
	seed.closeConns()
	if ids := c.get(context.Background(), []string{"events"}); ids["events"] != eventsID {
		t.Fatalf("ids %v with the bootstrap broker down", ids)
	}
	reqs, dials := other.requests()
	if dials != 1 || len(reqs) != 2 {
		t.Fatalf("the other broker saw %d connections, %d requests; want one, with ApiVersions and Metadata", dials, len(reqs))
	}
}
