package storage_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/storage"
)

// A produce partition's Records go in as they are; a fetch takes whole batches out.
func Example() {
	dir, _ := os.MkdirTemp("", "partition")
	defer os.RemoveAll(dir)
	l, err := storage.OpenLog(dir, storage.DefaultOptions())
	if err != nil {
		panic(err)
	}
	defer l.Close()

	// What a producer sends: one RecordBatch v2 (here built with kmsg).
	rec := kmsg.Record{Key: []byte("user-1"), Value: []byte("clicked")}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	rb := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: 0, NumRecords: 1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		FirstTimestamp: 1700000000000, MaxTimestamp: 1700000000000, Records: rec.AppendTo(nil)}
	batch := rb.AppendTo(nil)
	// kmsg writes Length and CRC as given: fill them in as a producer does.
	binary.BigEndian.PutUint32(batch[8:], uint32(len(batch)-12))
	binary.BigEndian.PutUint32(batch[17:], crc32.Checksum(batch[21:], crc32.MakeTable(crc32.Castagnoli)))

	res, err := l.Append(batch)
	fmt.Println(res.BaseOffset, err, l.HighWatermark())

	r, _ := l.Read(0, 1<<20) // r.WriteTo(conn) would sendfile it
	defer r.Close()
	fmt.Println(r.Len() == len(batch), r.NextOffset())

	_, err = l.Read(5, 1<<20)
	fmt.Println(errors.Is(err, storage.ErrOffsetOutOfRange))
	// Output:
	// 0 <nil> 1
	// true 1
	// true
}
