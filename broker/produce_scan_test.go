package broker

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// scanTestRequest is a Produce request with every kind of record set the scan meets:
// several batches, null records, a bad CRC in the only or the second batch, and a
// second topic.
func scanTestRequest(version int16) (req *kmsg.ProduceRequest, intact map[[2]int32]bool) {
	bad := batch(3, 1000, []byte("bad crc"))
	bad[len(bad)-1] ^= 1
	// A batch length beyond the record set: the scan gives up on the set before its
	// bytes have all arrived, and must wait for them before reading on.
	long := batch(40, 1000, bytes.Repeat([]byte("l"), 100))
	binary.BigEndian.PutUint32(long[8:], uint32(len(long)))
	parts := map[[2]int32][]byte{
		{0, 0}: append(batch(2, 1000, []byte("one")), batch(40, 1000, bytes.Repeat([]byte("v"), 100))...),
		{0, 1}: nil,
		{0, 2}: bad,
		{0, 3}: append(batch(1, 1000, nil), bad...),
		{0, 4}: long,
		{1, 0}: batch(100, 1000, bytes.Repeat([]byte("w"), 100)),
	}
	req = kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = version, -1, 5000
	id := "txn-id-is-skipped"
	req.TransactionID = &id
	for ti, name := range []string{"scan-a", "scan-b"} {
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = name
		for p := int32(0); parts[[2]int32{int32(ti), p}] != nil || (ti == 0 && p == 1); p++ {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = p
			rp.Records = parts[[2]int32{int32(ti), p}]
			if version >= 9 && p == 0 {
				rp.UnknownTags.Set(99, []byte("tagged")) // tags the scan must skip
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	intact = map[[2]int32]bool{{0, 0}: true, {1, 0}: true}
	return req, intact
}

// decodeScanned decodes frame as handleFrame does (records alias the frame).
func decodeScanned(t *testing.T, frame []byte) *kmsg.ProduceRequest {
	t.Helper()
	h, body, err := parseHeader(frame)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version = h.version
	if req.IsFlexible() {
		if body, err = skipTags(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := req.UnsafeReadFrom(body); err != nil {
		t.Fatal(err)
	}
	return req
}

// The scan, fed the request in pieces of any size (one byte at a time too), finds
// exactly the intact record sets, as the spans the decoder later returns.
func TestProduceScanFindsIntactRecordSets(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for v := int16(3); v <= 11; v++ {
		req, intact := scanTestRequest(v)
		frame := frameRequest(req, 7)[4:]
		for _, piece := range []int{len(frame), 1, 7, 61, -1} {
			c := &conn{}
			for got := 0; got < len(frame); {
				n := piece
				if n < 0 {
					n = 1 + rng.IntN(300)
				}
				got = min(got+n, len(frame))
				c.scan.advance(frame, got)
			}
			if c.scan.state != scanDone {
				t.Fatalf("v%d pieces of %d: scan ended in state %d", v, piece, c.scan.state)
			}
			dec := decodeScanned(t, frame)
			found := 0
			for ti, rt := range dec.Topics {
				for _, rp := range rt.Partitions {
					want := intact[[2]int32{int32(ti), rp.Partition}]
					if got := c.crcChecked(rp.Records); got != want {
						t.Fatalf("v%d pieces of %d: %s/%d checked %v, want %v", v, piece, rt.Topic, rp.Partition, got, want)
					}
					if want {
						found++
					}
				}
			}
			if found != len(intact) || len(c.scan.checked) != len(intact) {
				t.Fatalf("v%d: %d checked spans, want %d", v, len(c.scan.checked), len(intact))
			}
		}
	}
}

// A stretch between record sets that arrives in many small reads (a header with 16000
// tagged fields, one byte a read) is not parsed again from its start after every read:
// the scan's work stays linear in the frame. It was quadratic (7 s of CPU for this 32 KB
// frame, hours for megabytes: one trickling client could hold a core; found while
// looking into a slow FuzzProduceScan run, whose slowness was the minimizing of its
// 20 KB inputs, not this).
func TestProduceScanTrickledStretchIsLinear(t *testing.T) {
	_, intact := scanTestRequest(9)
	frame := taggedScanFrame(16000)
	var s produceScan
	for got := 1; got <= len(frame); got++ {
		s.advance(frame, got)
	}
	if s.state != scanDone || len(s.checked) != len(intact) {
		t.Fatalf("scan ended in state %d with %d checked spans, want done with %d", s.state, len(s.checked), len(intact))
	}
	if s.parsed > 4*len(frame) {
		t.Fatalf("the scan parsed %d bytes of a %d-byte frame fed a byte at a time", s.parsed, len(frame))
	}
}

// taggedScanFrame is scanTestRequest v9 whose request header carries tags empty tagged
// fields.
func taggedScanFrame(tags int) []byte {
	req, _ := scanTestRequest(9)
	plain := frameRequest(req, 7)[4:]
	hdr := 2 + 2 + 4 + 2 + len("test") // key, version, correlation id, client id; then tags
	frame := append([]byte(nil), plain[:hdr]...)
	frame = binary.AppendUvarint(frame, uint64(tags))
	for range tags {
		frame = append(frame, 0, 0) // tag 0, no data
	}
	return append(frame, plain[hdr+1:]...)
}

// Copies of the records (what the safe decoder returns) are never taken for the checked
// spans: the check is for the bytes the append will write.
func TestProduceScanChecksOnlyTheScannedBytes(t *testing.T) {
	req, _ := scanTestRequest(9)
	frame := frameRequest(req, 7)[4:]
	c := &conn{}
	c.scan.advance(frame, len(frame))
	copied := append([]byte(nil), req.Topics[0].Partitions[0].Records...)
	if c.crcChecked(copied) {
		t.Fatal("a copy of a checked record set counted as checked")
	}
	c.scan.reset()
	if c.crcChecked(decodeScanned(t, frame).Topics[0].Partitions[0].Records) {
		t.Fatal("checked spans survived reset")
	}
}

// Other requests and requests the scan cannot follow stop it without a checked span.
func TestProduceScanStopsOnOtherRequests(t *testing.T) {
	req, _ := scanTestRequest(9)
	produce := frameRequest(req, 7)[4:]
	cut := append([]byte(nil), produce[:len(produce)-200]...) // a records length beyond the frame
	old := append([]byte(nil), produce...)
	binary.BigEndian.PutUint16(old[2:], 2) // Produce v2: not served
	for name, frame := range map[string][]byte{
		"metadata":   frameRequest(metadataReq(12, "x"), 1)[4:],
		"produce v2": old,
		"cut short":  cut,
		"zeros":      make([]byte, 64),
	} {
		var s produceScan
		s.advance(frame, len(frame))
		if s.state != scanDone {
			t.Errorf("%s: scan still waiting for bytes at the end of the frame", name)
		}
		if name != "cut short" && len(s.checked) != 0 {
			t.Errorf("%s: %d spans checked", name, len(s.checked))
		}
	}
}

// FuzzProduceScan: on any bytes, in any pieces, the scan neither panics nor calls a span
// intact that is not a run of batches with correct CRCs.
func FuzzProduceScan(f *testing.F) {
	for _, v := range []int16{3, 8, 9, 11} {
		req, _ := scanTestRequest(v)
		f.Add(frameRequest(req, 1)[4:], uint16(1000))
	}
	f.Add(frameRequest(produceReq(-1, "fuzz", 0, batch(3, 1000, []byte("seed"))), 1)[4:], uint16(1))
	f.Add([]byte{0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0x80, 0x80, 0x80, 0x80}, uint16(3))
	f.Add(taggedScanFrame(4000), uint16(0)) // a header arriving a byte at a time
	tab := crc32.MakeTable(crc32.Castagnoli)
	f.Fuzz(func(t *testing.T, frame []byte, piece uint16) {
		var s produceScan
		for got := 0; got < len(frame); {
			got = min(got+int(piece)+1, len(frame))
			s.advance(frame, got)
		}
		for _, span := range s.checked {
			for b := span; len(b) > 0; {
				if len(b) < 61 {
					t.Fatalf("checked span ends in a torn batch header")
				}
				size := int(int32(binary.BigEndian.Uint32(b[8:]))) + 12
				if size < 61 || size > len(b) {
					t.Fatalf("checked span has a batch of %d bytes in %d", size, len(b))
				}
				if crc32.Checksum(b[21:size], tab) != binary.BigEndian.Uint32(b[17:]) {
					t.Fatal("checked span has a batch with a wrong CRC")
				}
				b = b[size:]
			}
		}
	})
}

// A produce request large enough to be scanned while it is read (the pooled-buffer path)
// with a corrupt batch for one partition: that partition is refused, the others stored.
func TestLargeProduceWithCorruptBatch(t *testing.T) {
	b := startBroker(t, testOptions(t))
	c := dialRaw(t, b.Addr())
	c.send(metadataReq(12, "scanned"))
	c.read(newMetadataResponse())
	good := batch(1000, 1000, bytes.Repeat([]byte("g"), 150))
	bad := batch(1000, 1000, bytes.Repeat([]byte("b"), 150))
	bad[len(bad)/2] ^= 0x40
	req := produceReq(-1, "scanned", 0, good)
	for p, records := range [][]byte{1: bad, 2: good} {
		if p > 0 {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition, rp.Records = int32(p), records
			req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
		}
	}
	if n := len(frameRequest(req, 1)); n <= connFrameBytes {
		t.Fatalf("request of %d bytes is not large enough to be scanned", n)
	}
	c.send(req)
	resp := &kmsg.ProduceResponse{Version: req.Version}
	c.read(resp)
	for i, want := range []int16{0, kerr.CorruptMessage.Code, 0} {
		sp := resp.Topics[0].Partitions[i]
		if sp.ErrorCode != want {
			t.Errorf("partition %d: error %v, want %v", sp.Partition, kerr.ErrorForCode(sp.ErrorCode), kerr.ErrorForCode(want))
		}
		hwm := b.partition("scanned", sp.Partition).log.HighWatermark()
		if want == 0 && (hwm != 1000 || sp.BaseOffset != 0) {
			t.Errorf("partition %d: high watermark %d, base offset %d", sp.Partition, hwm, sp.BaseOffset)
		}
		if want != 0 && hwm != 0 {
			t.Errorf("partition %d: corrupt batch stored (high watermark %d)", sp.Partition, hwm)
		}
	}
}

// Large produce frames the scan reads as they arrive, broken in ways it must survive: the
// broker answers or closes that connection, and goes on serving others.
func TestLargeMalformedProduceKeepsTheBrokerUp(t *testing.T) {
	b := startBroker(t, testOptions(t))
	req, _ := scanTestRequest(9)
	req.TransactionID = nil
	for i := range req.Topics {
		req.Topics[i].Topic = "malformed"
	}
	big := batch(2000, 1000, bytes.Repeat([]byte("m"), 150))
	req.Topics[0].Partitions[0].Records = big
	good := frameRequest(req, 1)
	if len(good) <= connFrameBytes {
		t.Fatalf("request of %d bytes is not large enough to be scanned", len(good))
	}
	at := bytes.Index(good, big) // the first record set, after its compact length
	rng := rand.New(rand.NewPCG(5, 6))
	for name, mutate := range map[string]func(f []byte){
		"batch length beyond the frame": func(f []byte) { binary.BigEndian.PutUint32(f[at+8:], 0x7fffffff) },
		"negative batch length":         func(f []byte) { binary.BigEndian.PutUint32(f[at+8:], 0xffffff00) },
		"records length beyond the frame": func(f []byte) {
			f[at-3], f[at-2], f[at-1] = 0xff, 0xff, 0x7f
		},
		"garbage after the header": func(f []byte) {
			for i := 40; i < len(f); i += 97 {
				f[i] = byte(rng.IntN(256))
			}
		},
	} {
		f := append([]byte(nil), good...)
		mutate(f)
		c := dialRaw(t, b.Addr())
		if _, err := c.nc.Write(f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, _ = c.readFrame() // a response or a closed connection: both are fine
		c.nc.Close()
		m := dialRaw(t, b.Addr())
		m.send(metadataReq(12))
		m.read(newMetadataResponse())
	}
}
