package broker

// Wire-level tests with hand-framed requests over real TCP: pipelining, KIP-511, acks=0,
// bad frames, byte-by-byte input, long-poll fetch, whole batches from mid-batch offsets.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// frameRequest encodes a request with header v1/v2 and the size prefix.
func frameRequest(req kmsg.Request, corrID int32) []byte {
	buf := make([]byte, 4, 64)
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.Key()))
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.GetVersion()))
	buf = binary.BigEndian.AppendUint32(buf, uint32(corrID))
	clientID := "test"
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(clientID)))
	buf = append(buf, clientID...)
	if req.IsFlexible() {
		buf = append(buf, 0)
	}
	buf = req.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	return buf
}

type rawConn struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *rawConn) send(reqs ...kmsg.Request) {
	c.t.Helper()
	var buf []byte
	for i, r := range reqs {
		buf = append(buf, frameRequest(r, int32(i+1))...)
	}
	if _, err := c.nc.Write(buf); err != nil {
		c.t.Fatal(err)
	}
}

// readFrame reads one response frame: correlation id and the rest.
func (c *rawConn) readFrame() (int32, []byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		return 0, nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.r, body); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(body)), body[4:], nil
}

// read decodes the next response as resp (whose version must be set).
func (c *rawConn) read(resp kmsg.Response) int32 {
	c.t.Helper()
	corr, body, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	if resp.IsFlexible() && resp.Key() != 18 {
		body = body[1:] // empty header tags
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decode %T: %v", resp, err)
	}
	return corr
}

// readInOrder reads the responses to reqs, sent with send (correlation ids 1, 2, …), and
// fails unless each comes back in request order.
func (c *rawConn) readInOrder(reqs []kmsg.Request) []kmsg.Response {
	c.t.Helper()
	out := make([]kmsg.Response, len(reqs))
	for i, req := range reqs {
		resp := req.ResponseKind()
		resp.SetVersion(req.GetVersion())
		if corr := c.read(resp); corr != int32(i+1) {
			c.t.Fatalf("response %d has correlation id %d", i+1, corr)
		}
		out[i] = resp
	}
	return out
}

func (c *rawConn) expectClosed() {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := c.readFrame()
	if err == nil {
		c.t.Fatal("connection still open: got a response")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatal("connection not closed by the broker")
	}
}

func apiVersionsReq(v int16) *kmsg.ApiVersionsRequest {
	r := kmsg.NewPtrApiVersionsRequest()
	r.Version = v
	r.ClientSoftwareName, r.ClientSoftwareVersion = "test", "1.0"
	return r
}

func metadataReq(v int16, topics ...string) *kmsg.MetadataRequest {
	r := kmsg.NewPtrMetadataRequest()
	r.Version = v
	r.AllowAutoTopicCreation = true
	for _, t := range topics {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(t)
		r.Topics = append(r.Topics, mt)
	}
	return r
}

func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	b := startBroker(t, testOptions(t))
	c := dialRaw(t, b.Addr())
	var reqs []kmsg.Request
	for i := 0; i < 30; i++ {
		switch i % 3 {
		case 0:
			reqs = append(reqs, apiVersionsReq(int16(i%5)))
		case 1:
			reqs = append(reqs, metadataReq(int16(i%13), "pipelined"))
		case 2:
			lo := kmsg.NewPtrListOffsetsRequest()
			lo.Version = int16(1 + i%7)
			lt := kmsg.NewListOffsetsRequestTopic()
			lt.Topic = "pipelined"
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Timestamp = -1
			lt.Partitions = append(lt.Partitions, lp)
			lo.Topics = append(lo.Topics, lt)
			reqs = append(reqs, lo)
		}
	}
	c.send(reqs...) // one write: all 30 requests in flight at once
	for _, resp := range c.readInOrder(reqs) {
		switch r := resp.(type) {
		case *kmsg.ApiVersionsResponse:
			if r.ErrorCode != 0 || len(r.ApiKeys) < 10 {
				t.Fatalf("ApiVersions v%d: error %d, %d keys", r.Version, r.ErrorCode, len(r.ApiKeys))
			}
		case *kmsg.MetadataResponse:
			if len(r.Topics) != 1 || r.Topics[0].ErrorCode != 0 || len(r.Topics[0].Partitions) != 3 {
				t.Fatalf("Metadata v%d: %+v", r.Version, r.Topics)
			}
		case *kmsg.ListOffsetsResponse:
			if p := r.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.Offset != 0 {
				t.Fatalf("ListOffsets v%d: %+v", r.Version, p)
			}
		}
	}
}

// Responses with file sections (Fetch) go through the connection's writer goroutine,
// small ones are written by the reading goroutine when nothing is queued: mixed in one
// pipeline they must still come back in request order.
func TestPipelinedFetchAndProduceAnsweredInOrder(t *testing.T) {
	b := startBroker(t, testOptions(t))
	c := dialRaw(t, b.Addr())
	c.send(produceReq(-1, "mixed", 0, batch(3, 1000, []byte("first"))))
	if pr := (&kmsg.ProduceResponse{Version: 9}); c.read(pr) != 1 || pr.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("first produce: %+v", pr.Topics)
	}
	var reqs []kmsg.Request
	for i := 0; i < 60; i++ {
		switch i % 3 {
		case 0:
			reqs = append(reqs, fetchReq("mixed", 0, 0, 0))
		case 1:
			reqs = append(reqs, produceReq(-1, "mixed", 0, batch(2, 2000, []byte("more"))))
		case 2:
			reqs = append(reqs, apiVersionsReq(3))
		}
	}
	c.send(reqs...)
	lastBase := int64(0)
	for i, resp := range c.readInOrder(reqs) {
		switch r := resp.(type) {
		case *kmsg.FetchResponse:
			data := r.Topics[0].Partitions[0].RecordBatches
			if len(data) < 61 || binary.BigEndian.Uint64(data) != 0 {
				t.Fatalf("fetch %d: %d bytes not starting at offset 0", i+1, len(data))
			}
		case *kmsg.ProduceResponse:
			p := r.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.BaseOffset <= lastBase {
				t.Fatalf("produce %d: error %d, base offset %d after %d", i+1, p.ErrorCode, p.BaseOffset, lastBase)
			}
			lastBase = p.BaseOffset
		}
	}
}

func TestApiVersionsUnknownVersionKIP511(t *testing.T) {
	b := startBroker(t, testOptions(t))
	c := dialRaw(t, b.Addr())
	req := apiVersionsReq(4)
	frame := frameRequest(req, 7)
	binary.BigEndian.PutUint16(frame[6:], 99) // a version from the future
	if _, err := c.nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if corr := c.read(resp); corr != 7 {
		t.Fatalf("correlation id %d", corr)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("error %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
	}
	if len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 || resp.ApiKeys[0].MaxVersion != 4 {
		t.Fatalf("keys %+v", resp.ApiKeys)
	}
	// The client retries at v4 on the same connection and gets the full list.
	c.send(apiVersionsReq(4))
	full := kmsg.NewPtrApiVersionsResponse()
	full.Version = 4
	c.read(full)
	want := map[int16][2]int16{18: {0, 4}, 3: {0, 12}, 0: {3, 11}, 1: {4, 12}, 2: {1, 7}, 19: {0, 7}, 20: {0, 6},
		21: {0, 2}, 23: {0, 4}, 29: {0, 3}, 30: {0, 3}, 31: {0, 3}, 32: {0, 4}, 33: {0, 2}, 35: {0, 4}, 37: {0, 3},
		43: {0, 2}, 44: {0, 1}, 45: {0, 1}, 46: {0, 0}, 48: {0, 1}, 49: {0, 1}, 50: {0, 0}, 51: {0, 0}, 60: {0, 1}}
	for _, k := range full.ApiKeys {
		if w, ok := want[k.ApiKey]; ok {
			if k.MinVersion != w[0] || k.MaxVersion != w[1] {
				t.Errorf("%s: v%d-%d, want v%d-%d", kmsg.NameForKey(k.ApiKey), k.MinVersion, k.MaxVersion, w[0], w[1])
			}
			delete(want, k.ApiKey)
		}
	}
	if len(want) > 0 {
		t.Fatalf("not advertised: %v", want)
	}
}

// batch builds a valid uncompressed RecordBatch v2 with n records, timestamps ts.
func batch(n int, ts int64, payload []byte) []byte {
	rb := kmsg.NewRecordBatch()
	rb.Magic = 2
	rb.LastOffsetDelta = int32(n - 1)
	rb.FirstTimestamp, rb.MaxTimestamp = ts, ts
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = -1, -1, -1
	rb.NumRecords = int32(n)
	var recs []byte
	for i := 0; i < n; i++ {
		r := kmsg.NewRecord()
		r.OffsetDelta = int32(i)
		r.Value = payload
		r.Length = int32(len(r.AppendTo(nil)) - 1) // the length excludes its own (1-byte, 0) varint
		recs = r.AppendTo(recs)
	}
	rb.Records = recs
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

func produceReq(acks int16, topic string, partition int32, records []byte) *kmsg.ProduceRequest {
	r := kmsg.NewPtrProduceRequest()
	r.Version = 9
	r.Acks = acks
	r.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	r.Topics = append(r.Topics, rt)
	return r
}

func TestAcksZeroGetsNoResponse(t *testing.T) {
	b := startBroker(t, testOptions(t))
	c := dialRaw(t, b.Addr())
	c.send(produceReq(0, "fire-and-forget", 0, batch(5, 1000, []byte("x"))), apiVersionsReq(3))
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 3
	if corr := c.read(resp); corr != 2 {
		t.Fatalf("first response has correlation id %d: the acks=0 produce was answered", corr)
	}
	if p := b.partition("fire-and-forget", 0); p == nil || p.log.HighWatermark() != 5 {
		t.Fatal("acks=0 records were not appended")
	}
}

func TestBadFramesCloseOnlyThatConnection(t *testing.T) {
	o := testOptions(t)
	o.MaxRequestBytes = 1 << 20
	o.Registry = prometheus.NewRegistry()
	b := startBroker(t, o)
	good := dialRaw(t, b.Addr())
	good.send(apiVersionsReq(0))
	good.read(&kmsg.ApiVersionsResponse{})

	cases := map[string][]byte{
		// Only a size, no body: a broker that allocated and read 1 GiB would hang here.
		"oversized": binary.BigEndian.AppendUint32(nil, 1<<30),
		"negative":  binary.BigEndian.AppendUint32(nil, 0xffffffff),
		"too short": {0, 0, 0, 3, 0, 18, 0},
		"unknown api key": func() []byte {
			f := frameRequest(apiVersionsReq(0), 1)
			binary.BigEndian.PutUint16(f[4:], 9999)
			return f
		}(),
		"unsupported produce version": func() []byte {
			f := frameRequest(produceReq(1, "x", 0, batch(1, 0, nil)), 1)
			binary.BigEndian.PutUint16(f[6:], 2)
			return f
		}(),
		"garbage body": func() []byte {
			f := frameRequest(metadataReq(12, "abc"), 1)
			for i := 15; i < len(f); i++ {
				f[i] = 0xff
			}
			return f
		}(),
		"client id beyond frame": {0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0x7f, 0xff},
	}
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			bad := dialRaw(t, b.Addr())
			if _, err := bad.nc.Write(frame); err != nil {
				t.Fatal(err)
			}
			bad.expectClosed()
			// The other connection is untouched.
			good.send(apiVersionsReq(1))
			resp := kmsg.NewPtrApiVersionsResponse()
			resp.Version = 1
			good.read(resp)
		})
	}
	if n := metricValue(b.metrics.malformed); n != float64(len(cases)) {
		t.Fatalf("malformed counter %v, want %d", n, len(cases))
	}
}

func TestRequestFedByteByByte(t *testing.T) {
	b := startBroker(t, testOptions(t))
	c := dialRaw(t, b.Addr())
	frame := append(frameRequest(metadataReq(12, "bytewise"), 1), frameRequest(apiVersionsReq(3), 2)...)
	for i := range frame {
		if _, err := c.nc.Write(frame[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	md := kmsg.NewPtrMetadataResponse()
	md.Version = 12
	if corr := c.read(md); corr != 1 || len(md.Topics) != 1 || *md.Topics[0].Topic != "bytewise" {
		t.Fatalf("metadata %d %+v", corr, md.Topics)
	}
	av := kmsg.NewPtrApiVersionsResponse()
	av.Version = 3
	if corr := c.read(av); corr != 2 {
		t.Fatalf("corr %d", corr)
	}
}

func fetchReq(topic string, partition int32, offset int64, maxWait int32) *kmsg.FetchRequest {
	r := kmsg.NewPtrFetchRequest()
	r.Version = 12
	r.ReplicaID = -1
	r.MaxWaitMillis = maxWait
	r.MinBytes = 1
	r.MaxBytes = 50 << 20
	r.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	r.Topics = append(r.Topics, rt)
	return r
}

// waitFetchWaiting waits (bounded) until one Fetch is long-polling on b.
func waitFetchWaiting(t *testing.T, b *Broker) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for metricValue(b.metrics.fetchWaiting) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("fetch never started waiting")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFetchLongPollWakesOnProduce(t *testing.T) {
	b := startBroker(t, testOptions(t))
	c := dialRaw(t, b.Addr())
	c.send(metadataReq(12, "longpoll"))
	c.read(&kmsg.MetadataResponse{Version: 12})
	// Wait up to 10 minutes: only new data can end this fetch within the test's deadline.
	c.send(fetchReq("longpoll", 1, 0, 600_000))
	waitFetchWaiting(t, b)
	p := b.partition("longpoll", 1)
	if _, err := p.log.Append(batch(3, 1000, []byte("wake"))); err != nil {
		t.Fatal(err)
	}
	resp := &kmsg.FetchResponse{Version: 12}
	c.read(resp)
	fp := resp.Topics[0].Partitions[0]
	if fp.ErrorCode != 0 || fp.HighWatermark != 3 || len(fp.RecordBatches) == 0 {
		t.Fatalf("fetch answered %+v", fp)
	}
}

func TestFetchFromMiddleOfBatchReturnsWholeBatch(t *testing.T) {
	b := startBroker(t, testOptions(t))
	c := dialRaw(t, b.Addr())
	c.send(produceReq(-1, "midbatch", 0, batch(10, 1000, []byte("r"))), produceReq(-1, "midbatch", 0, batch(10, 2000, []byte("s"))))
	for i := 0; i < 2; i++ {
		pr := &kmsg.ProduceResponse{Version: 9}
		c.read(pr)
		if p := pr.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != int64(i*10) {
			t.Fatalf("produce %d: %+v", i, p)
		}
	}
	c.send(fetchReq("midbatch", 0, 5, 0))
	resp := &kmsg.FetchResponse{Version: 12}
	c.read(resp)
	data := resp.Topics[0].Partitions[0].RecordBatches
	if len(data) < 61 || binary.BigEndian.Uint64(data) != 0 {
		t.Fatalf("fetch at 5 did not start with the batch at 0: %d bytes", len(data))
	}
	// kgo drops the records before 5 itself.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"midbatch": {0: kgo.NewOffset().At(5)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var offs []int64
	for len(offs) < 15 {
		fs := cl.PollFetches(testCtx(t))
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { offs = append(offs, r.Offset) })
	}
	if offs[0] != 5 || offs[14] != 19 {
		t.Fatalf("offsets %v", offs)
	}
}

func TestProduceErrors(t *testing.T) {
	b := startBroker(t, testOptions(t))
	c := dialRaw(t, b.Addr())
	bad := batch(2, 1000, []byte("crc"))
	bad[len(bad)-1] ^= 0xff
	cases := []struct {
		name string
		req  *kmsg.ProduceRequest
		want *kerr.Error
	}{
		{"bad crc", produceReq(-1, "errs", 0, bad), kerr.CorruptMessage},
		{"bad acks", produceReq(2, "errs", 0, batch(1, 0, nil)), kerr.InvalidRequiredAcks},
		{"unknown partition", produceReq(-1, "errs", 99, batch(1, 0, nil)), kerr.UnknownTopicOrPartition},
		{"bad topic name", produceReq(-1, "no/slash", 0, batch(1, 0, nil)), kerr.InvalidTopicException},
		{"too large", produceReq(-1, "errs", 0, batch(1, 0, bytes.Repeat([]byte("x"), 2<<20))), kerr.MessageTooLarge},
	}
	for _, tc := range cases {
		c.send(tc.req)
		resp := &kmsg.ProduceResponse{Version: 9}
		c.read(resp)
		if got := resp.Topics[0].Partitions[0].ErrorCode; got != tc.want.Code {
			t.Errorf("%s: error %v, want %v", tc.name, kerr.ErrorForCode(got), tc.want)
		}
	}
	if hwm := b.partition("errs", 0).log.HighWatermark(); hwm != 0 {
		t.Fatalf("refused batches were appended: hwm %d", hwm)
	}
}

func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}

func newMetadataResponse() *kmsg.MetadataResponse { return &kmsg.MetadataResponse{Version: 12} }

// librdkafka (kcat) treats a null record set as a protocol error: an empty partition must
// be answered with an empty, non-null one.
func TestFetchEmptyPartitionHasEmptyNotNullRecords(t *testing.T) {
	b := startBroker(t, testOptions(t))
	c := dialRaw(t, b.Addr())
	c.send(metadataReq(12, "empty"))
	c.read(newMetadataResponse())
	for _, v := range []int16{4, 11, 12} {
		req := fetchReq("empty", 0, 0, 0)
		req.Version = v
		c.send(req)
		resp := &kmsg.FetchResponse{Version: v}
		c.read(resp)
		if fp := resp.Topics[0].Partitions[0]; fp.ErrorCode != 0 || fp.RecordBatches == nil {
			t.Fatalf("v%d: error %d, records nil=%v", v, fp.ErrorCode, fp.RecordBatches == nil)
		}
	}
}
