package broker

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeAll reads every record of topic from the start until the end offsets.
func consumeAll(t *testing.T, addr, topic string, parts int32) map[int32][]*kgo.Record {
	t.Helper()
	_, adm := newAdmin(t, addr)
	ends, err := adm.ListEndOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	offsets := map[int32]kgo.Offset{}
	want := 0
	for p := int32(0); p < parts; p++ {
		offsets[p] = kgo.NewOffset().AtStart()
		e, _ := ends.Lookup(topic, p)
		want += int(e.Offset)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[int32][]*kgo.Record{}
	n := 0
	ctx := testCtx(t)
	for n < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d", n, want)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("partition %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) { out[r.Partition] = append(out[r.Partition], r); n++ })
	}
	return out
}

// A torn or corrupt tail batch is cut off on restart; everything before it is intact.
func TestRecoveryTruncatesBadTail(t *testing.T) {
	for _, damage := range []string{"torn", "corrupt"} {
		t.Run(damage, func(t *testing.T) {
			o := testOptions(t)
			b := startBroker(t, o)
			c := dialRaw(t, b.Addr())
			c.send(metadataReq(12, "tail"))
			c.read(newMetadataResponse())
			p := b.partition("tail", 0)
			for i := 0; i < 50; i++ {
				if _, err := p.log.Append(batch(3, 1000+int64(i), []byte(strings.Repeat("t", 50)))); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			logs, _ := filepath.Glob(filepath.Join(o.Dir, "tail-0", "*.log"))
			sort.Strings(logs)
			last := logs[len(logs)-1]
			data, err := os.ReadFile(last)
			if err != nil {
				t.Fatal(err)
			}
			switch damage {
			case "torn": // the process died mid-write of the last batch
				data = data[:len(data)-17]
			case "corrupt": // a bit flipped in the last batch's records
				data[len(data)-5] ^= 0x40
			}
			if err := os.WriteFile(last, data, 0o644); err != nil {
				t.Fatal(err)
			}
			b2 := startBroker(t, o)
			if hwm := b2.partition("tail", 0).log.HighWatermark(); hwm != 49*3 {
				t.Fatalf("high watermark %d after recovery, want %d", hwm, 49*3)
			}
			recs := consumeAll(t, b2.Addr(), "tail", 3)[0]
			if len(recs) != 49*3 {
				t.Fatalf("%d records after recovery, want %d", len(recs), 49*3)
			}
			for i, r := range recs {
				if r.Offset != int64(i) || r.Timestamp.UnixMilli() != 1000+int64(i/3) {
					t.Fatalf("record %d: offset %d ts %d", i, r.Offset, r.Timestamp.UnixMilli())
				}
			}
			// And the log takes new appends where it was cut.
			res, err := b2.partition("tail", 0).log.Append(batch(1, 5000, []byte("after")))
			if err != nil || res.BaseOffset != 49*3 {
				t.Fatalf("append after recovery: %+v %v", res, err)
			}
		})
	}
}
