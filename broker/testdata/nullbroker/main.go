// Command nullbroker answers Kafka produce requests at once without storing anything:
// ApiVersions, Metadata (one topic, "bench", with -partitions partitions) and Produce,
// every partition acknowledged with increasing offsets. It is no broker; the benchmark
// BenchmarkProduceCeiling runs the broker benchmark's producer against it to show the
// produce rate the client reaches when the broker costs nothing. Encoded and decoded
// with kmsg, like the broker. It lives under testdata so `go build ./...` skips it.
//
// With -keep it also keeps every produced record batch in memory (base offsets written
// in, nothing checked) and answers ListOffsets and Fetch from there at once: Fetch
// returns whole batches from the one holding the fetch offset, up to the partition's and
// the request's byte limits (at least one batch), without waiting when there is nothing
// new. BenchmarkConsumeCeiling consumes from it to show the rate the consumer reaches
// when fetches cost the broker nothing.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	partitions := flag.Int("partitions", 6, "partitions of topic bench")
	keep := flag.Bool("keep", false, "keep produced batches in memory and serve Fetch and ListOffsets")
	flag.Parse()
	if *keep {
		store = &logs{parts: map[int32]*partLog{}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "nullbroker:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "msg=\"broker listening\" addr=%s\n", ln.Addr())
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		go serve(nc, ln.Addr().(*net.TCPAddr), int32(*partitions))
	}
}

func serve(nc net.Conn, addr *net.TCPAddr, partitions int32) {
	defer nc.Close()
	r := bufio.NewReaderSize(nc, 64<<10)
	w := bufio.NewWriter(nc)
	var buf []byte
	next := map[int32]int64{}
	var sets []recordSet
	for {
		if store != nil {
			buf = nil // kept batches alias the frame they came in
		}
		var size [4]byte
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(size[:]))
		if n < 10 {
			return
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		frame := buf[:n]
		if _, err := io.ReadFull(r, frame); err != nil {
			return
		}
		key := int16(binary.BigEndian.Uint16(frame))
		version := int16(binary.BigEndian.Uint16(frame[2:]))
		corr := binary.BigEndian.Uint32(frame[4:])
		body := frame[10:]
		if l := int16(binary.BigEndian.Uint16(frame[8:])); l > 0 {
			body = body[l:]
		}
		if key == 18 && version > 3 {
			version = 3 // answer at v3: enough for the client to learn our ranges
		}
		req := kmsg.RequestForKey(key)
		if req == nil {
			return
		}
		req.SetVersion(version)
		if req.IsFlexible() {
			body = body[1:] // no request header tags from the client used here
		}
		if err := req.(kmsg.UnsafeReadFrom).UnsafeReadFrom(body); err != nil {
			return
		}
		var resp kmsg.Response
		switch req := req.(type) {
		case *kmsg.ApiVersionsRequest:
			r := kmsg.NewPtrApiVersionsResponse()
			keys := [][3]int16{{0, 3, 9}, {3, 0, 12}, {18, 0, 3}}
			if store != nil {
				keys = append(keys, [3]int16{1, 4, 12}, [3]int16{2, 1, 7})
			}
			for _, k := range keys {
				ak := kmsg.NewApiVersionsResponseApiKey()
				ak.ApiKey, ak.MinVersion, ak.MaxVersion = k[0], k[1], k[2]
				r.ApiKeys = append(r.ApiKeys, ak)
			}
			resp = r
		case *kmsg.MetadataRequest:
			r := kmsg.NewPtrMetadataResponse()
			b := kmsg.NewMetadataResponseBroker()
			b.Host, b.Port = addr.IP.String(), int32(addr.Port)
			r.Brokers = append(r.Brokers, b)
			t := kmsg.NewMetadataResponseTopic()
			t.Topic = kmsg.StringPtr("bench")
			for p := int32(0); p < partitions; p++ {
				mp := kmsg.NewMetadataResponseTopicPartition()
				mp.Partition, mp.Replicas, mp.ISR = p, []int32{0}, []int32{0}
				t.Partitions = append(t.Partitions, mp)
			}
			r.Topics = append(r.Topics, t)
			resp = r
		case *kmsg.ProduceRequest:
			r := req.ResponseKind().(*kmsg.ProduceResponse)
			for _, rt := range req.Topics {
				st := kmsg.NewProduceResponseTopic()
				st.Topic = rt.Topic
				for _, rp := range rt.Partitions {
					sp := kmsg.NewProduceResponseTopicPartition()
					sp.Partition = rp.Partition
					if store != nil {
						sp.BaseOffset = store.append(rp.Partition, rp.Records)
						st.Partitions = append(st.Partitions, sp)
						continue
					}
					sp.BaseOffset = next[rp.Partition]
					if len(rp.Records) >= 61 { // RecordBatch v2: records in the batch at byte 57
						next[rp.Partition] += int64(binary.BigEndian.Uint32(rp.Records[57:]))
					}
					st.Partitions = append(st.Partitions, sp)
				}
				r.Topics = append(r.Topics, st)
			}
			if req.Acks == 0 {
				continue
			}
			resp = r
		case *kmsg.ListOffsetsRequest:
			if store == nil {
				return
			}
			r := req.ResponseKind().(*kmsg.ListOffsetsResponse)
			for _, rt := range req.Topics {
				st := kmsg.NewListOffsetsResponseTopic()
				st.Topic = rt.Topic
				for _, rp := range rt.Partitions {
					sp := kmsg.NewListOffsetsResponseTopicPartition()
					sp.Partition = rp.Partition
					sp.Timestamp, sp.Offset = -1, 0 // earliest; latest (and any time) is the end
					if rp.Timestamp != -2 {
						sp.Offset = store.end(rp.Partition)
					}
					st.Partitions = append(st.Partitions, sp)
				}
				r.Topics = append(r.Topics, st)
			}
			resp = r
		case *kmsg.FetchRequest:
			if store == nil {
				return
			}
			r := req.ResponseKind().(*kmsg.FetchResponse)
			remaining := int(req.MaxBytes)
			sets = sets[:0]
			for _, rt := range req.Topics {
				st := kmsg.NewFetchResponseTopic()
				st.Topic = rt.Topic
				for _, rp := range rt.Partitions {
					sp := kmsg.NewFetchResponseTopicPartition()
					sp.Partition = rp.Partition
					sp.HighWatermark = store.end(rp.Partition)
					sp.LastStableOffset, sp.LogStartOffset = sp.HighWatermark, 0
					sp.PreferredReadReplica = -1
					// The batches are written from the store with writev: the
					// response carries a marker where they go (see below).
					set := recordSet{batches: store.read(rp.Partition, rp.FetchOffset, min(int(rp.PartitionMaxBytes), remaining))}
					for _, b := range set.batches {
						set.n += len(b)
					}
					set.marker = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 0x6e756c6c62726f6b), uint64(len(sets)))
					sp.RecordBatches = set.marker
					sets = append(sets, set)
					remaining -= set.n
					st.Partitions = append(st.Partitions, sp)
				}
				r.Topics = append(r.Topics, st)
			}
			resp = r
		default:
			return
		}
		resp.SetVersion(version)
		out := binary.BigEndian.AppendUint32(make([]byte, 4, 256), corr)
		if resp.IsFlexible() && key != 18 {
			out = append(out, 0)
		}
		out = resp.AppendTo(out)
		if len(sets) > 0 {
			// Swap each marker and its length prefix for the real length and batches.
			var bufs net.Buffers
			size, pos := 0, 0
			for _, set := range sets {
				i := pos + bytes.Index(out[pos:], set.marker)
				var lenBytes []byte
				prefix := 4
				if resp.IsFlexible() { // compact bytes: uvarint(len+1); 17 fits in one byte
					prefix = 1
					lenBytes = binary.AppendUvarint(nil, uint64(set.n)+1)
				} else {
					lenBytes = binary.BigEndian.AppendUint32(nil, uint32(set.n))
				}
				bufs = append(bufs, out[pos:i-prefix], lenBytes)
				bufs = append(bufs, set.batches...)
				size += i - prefix - pos + len(lenBytes) + set.n
				pos = i + len(set.marker)
			}
			bufs = append(bufs, out[pos:])
			size += len(out) - pos
			binary.BigEndian.PutUint32(out, uint32(size-4))
			sets = sets[:0]
			if err := w.Flush(); err != nil {
				return
			}
			if _, err := bufs.WriteTo(nc); err != nil {
				return
			}
			continue
		}
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		if _, err := w.Write(out); err != nil {
			return
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// store keeps produced batches with -keep (nil otherwise).
var store *logs

type logs struct {
	mu    sync.Mutex
	parts map[int32]*partLog
}

// partLog is one partition's batches in offset order.
type partLog struct {
	batches [][]byte
	bases   []int64 // base offset of each batch
	next    int64
}

func (l *logs) part(p int32) *partLog {
	pl := l.parts[p]
	if pl == nil {
		pl = &partLog{}
		l.parts[p] = pl
	}
	return pl
}

// append keeps records' batches (RecordBatch v2: base offset at 0, length at 8, last
// offset delta at 23) with their offsets written in and returns the first offset.
func (l *logs) append(p int32, records []byte) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	pl := l.part(p)
	first := pl.next
	for len(records) >= 61 {
		n := 12 + int(binary.BigEndian.Uint32(records[8:]))
		if n > len(records) {
			break
		}
		b := records[:n:n]
		binary.BigEndian.PutUint64(b, uint64(pl.next))
		pl.batches = append(pl.batches, b)
		pl.bases = append(pl.bases, pl.next)
		pl.next += int64(binary.BigEndian.Uint32(b[23:])) + 1
		records = records[n:]
	}
	return first
}

func (l *logs) end(p int32) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.part(p).next
}

// recordSet is one partition's batches in a fetch response and the marker that stands
// for them in the encoded response.
type recordSet struct {
	marker  []byte
	batches [][]byte
	n       int
}

// read returns the batches from the one holding offset on, at most limit bytes but at
// least one batch.
func (l *logs) read(p int32, offset int64, limit int) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	pl := l.part(p)
	if offset >= pl.next {
		return nil
	}
	i := sort.Search(len(pl.bases), func(i int) bool { return pl.bases[i] > offset }) - 1
	if i < 0 {
		i = 0
	}
	n, j := 0, i
	for ; j < len(pl.batches); j++ {
		if j > i && n+len(pl.batches[j]) > limit {
			break
		}
		n += len(pl.batches[j])
	}
	return pl.batches[i:j]
}
