// Command nullbroker answers Kafka produce requests at once without storing anything:
// ApiVersions, Metadata (one topic, "bench", with -partitions partitions) and Produce,
// every partition acknowledged with increasing offsets. It is no broker; the benchmark
// BenchmarkProduceCeiling runs the broker benchmark's producer against it to show the
// produce rate the client reaches when the broker costs nothing. Encoded and decoded
// with kmsg, like the broker. It lives under testdata so `go build ./...` skips it.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	partitions := flag.Int("partitions", 6, "partitions of topic bench")
	flag.Parse()
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
	for {
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
			for _, k := range [][3]int16{{0, 3, 9}, {3, 0, 12}, {18, 0, 3}} {
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
		default:
			return
		}
		resp.SetVersion(version)
		out := binary.BigEndian.AppendUint32(make([]byte, 4, 256), corr)
		if resp.IsFlexible() && key != 18 {
			out = append(out, 0)
		}
		out = resp.AppendTo(out)
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
