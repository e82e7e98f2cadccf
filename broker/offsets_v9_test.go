package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit v9 and OffsetFetch v9 (the KIP-848 shapes) work for a classic group: a
// simple commit (generation/epoch -1) round-trips with its metadata.
func TestOffsetCommitFetchV9(t *testing.T) {
	b := startBroker(t, testOptions(t))
	c := dialRaw(t, b.Addr())
	c.send(produceReq(-1, "v9", 0, batch(5, 1000, []byte("r"))))
	c.read(&kmsg.ProduceResponse{Version: 9})

	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version = 9
	commit.Group = "g9"
	commit.Generation = -1
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "v9"
	cp := kmsg.NewOffsetCommitRequestTopicPartition()
	cp.Partition, cp.Offset, cp.LeaderEpoch = 0, 3, -1
	md := "hello"
	cp.Metadata = &md
	ct.Partitions = append(ct.Partitions, cp)
	commit.Topics = append(commit.Topics, ct)
	c.send(commit)
	cresp := &kmsg.OffsetCommitResponse{Version: 9}
	c.read(cresp)
	if ec := cresp.Topics[0].Partitions[0].ErrorCode; ec != 0 {
		t.Fatalf("commit v9: error %d", ec)
	}

	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version = 9
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = "g9"
	g.MemberEpoch = -1
	fetch.Groups = append(fetch.Groups, g)
	c.send(fetch)
	fresp := &kmsg.OffsetFetchResponse{Version: 9}
	c.read(fresp)
	if len(fresp.Groups) != 1 || len(fresp.Groups[0].Topics) != 1 {
		t.Fatalf("fetch v9: %+v", fresp)
	}
	p := fresp.Groups[0].Topics[0].Partitions[0]
	if p.Offset != 3 || p.Metadata == nil || *p.Metadata != "hello" {
		t.Fatalf("fetch v9 partition: %+v", p)
	}
}
