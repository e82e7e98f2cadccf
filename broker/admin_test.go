package broker

// Topic administration through real clients: kadm (franz-go) and kafka-go's Conn.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/internal/fsutil"
)

func newAdmin(t testing.TB, addr string, opts ...kgo.Opt) (*kgo.Client, *kadm.Client) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, kadm.NewClient(cl)
}

func configOf(t *testing.T, adm *kadm.Client, topic, key string) kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe %s: %v %v", topic, err, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == key {
			return c
		}
	}
	t.Fatalf("config %s not described", key)
	return kadm.Config{}
}

func TestAdminTopicsAndConfigs(t *testing.T) {
	o := testOptions(t)
	o.SegmentBytes = 1 << 20 // differs from Kafka's default: reported as a static broker config
	b := startBroker(t, o)
	_, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	ten := "10000"
	r, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": &ten}, "cfg")
	if err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	if r.NumPartitions != 2 || r.ReplicationFactor != 1 || *r.Configs["retention.ms"].Value != "10000" {
		t.Fatalf("create response %+v", r)
	}

	compact, bogus := "compaction", "1"
	refusals := []struct {
		name    string
		parts   int32
		rf      int16
		configs map[string]*string
		topic   string
		want    *kerr.Error
	}{
		{"duplicate", 1, 1, nil, "cfg", kerr.TopicAlreadyExists},
		{"replication 3", 1, 3, nil, "rf3", kerr.InvalidReplicationFactor},
		{"unknown cleanup policy", 1, 1, map[string]*string{"cleanup.policy": &compact}, "compacted", kerr.InvalidConfig},
		{"unknown config", 1, 1, map[string]*string{"no.such.config": &bogus}, "unknowncfg", kerr.InvalidConfig},
		{"bad name", 1, 1, nil, "bad name", kerr.InvalidTopicException},
		{"zero partitions", 0, 1, nil, "zero", kerr.InvalidPartitions},
	}
	for _, tc := range refusals {
		r, err := adm.CreateTopic(ctx, tc.parts, tc.rf, tc.configs, tc.topic)
		if err == nil {
			err = r.Err
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := adm.ValidateCreateTopics(ctx, 3, 1, nil, "validated"); err != nil {
		t.Fatal(err)
	}
	if b.topic("validated") != nil {
		t.Fatal("validate-only create created the topic")
	}

	// Every known config is described with value and source.
	rcs, err := adm.DescribeTopicConfigs(ctx, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := rcs.On("cfg", nil)
	if len(rc.Configs) != len(topicConfigs) {
		t.Fatalf("%d configs described, want %d", len(rc.Configs), len(topicConfigs))
	}
	if c := configOf(t, adm, "cfg", "retention.ms"); c.MaybeValue() != "10000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms %s %v", c.MaybeValue(), c.Source)
	}
	if c := configOf(t, adm, "cfg", "segment.bytes"); c.MaybeValue() != "1048576" || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Fatalf("segment.bytes %s %v", c.MaybeValue(), c.Source)
	}
	if c := configOf(t, adm, "cfg", "cleanup.policy"); c.MaybeValue() != "delete" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("cleanup.policy %s %v", c.MaybeValue(), c.Source)
	}

	// Incremental alter: set one, delete another back to its default.
	hour := "3600000"
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "segment.ms", Value: &hour},
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
	}, "cfg")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter: %v %v", err, rs)
	}
	if c := configOf(t, adm, "cfg", "retention.ms"); c.MaybeValue() != "604800000" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("after delete-config retention.ms %s %v", c.MaybeValue(), c.Source)
	}
	bad := "-5"
	rs, _ = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &bad}}, "cfg")
	if !errors.Is(rs[0].Err, kerr.InvalidConfig) {
		t.Fatalf("bad value accepted: %v", rs[0].Err)
	}
	// Non-incremental AlterConfigs replaces the whole set.
	day := "86400000"
	rs, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: &day}}, "cfg")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter state: %v %v", err, rs)
	}
	if c := configOf(t, adm, "cfg", "segment.ms"); c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("AlterConfigs kept segment.ms: %v", c.Source)
	}

	// Partitions grow, never shrink.
	if rs, err := adm.UpdatePartitions(ctx, 4, "cfg"); err != nil || rs["cfg"].Err != nil {
		t.Fatalf("grow: %v %v", err, rs)
	}
	if rs, _ := adm.UpdatePartitions(ctx, 2, "cfg"); !errors.Is(rs["cfg"].Err, kerr.InvalidPartitions) {
		t.Fatalf("shrink: %v", rs["cfg"].Err)
	}

	// DeleteRecords moves the low watermark.
	p := b.partition("cfg", 0)
	for i := 0; i < 3; i++ {
		if _, err := p.log.Append(batch(4, 1000, []byte("d"))); err != nil {
			t.Fatal(err)
		}
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "cfg", Partition: 0, At: 4})
	drs, err := adm.DeleteRecords(ctx, offs)
	if err != nil {
		t.Fatal(err)
	}
	if dr, _ := drs.Lookup("cfg", 0); dr.Err != nil || dr.LowWatermark != 4 {
		t.Fatalf("delete records %+v", dr)
	}
	starts, _ := adm.ListStartOffsets(ctx, "cfg")
	if so, _ := starts.Lookup("cfg", 0); so.Offset != 4 {
		t.Fatalf("start offset %d", so.Offset)
	}
	offs.Add(kadm.Offset{Topic: "cfg", Partition: 0, At: 99})
	drs, _ = adm.DeleteRecords(ctx, offs)
	if dr, _ := drs.Lookup("cfg", 0); !errors.Is(dr.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete past end: %v", dr.Err)
	}

	// Cluster view: one broker, advertised address, a cluster id; broker configs.
	md, err := adm.BrokerMetadata(ctx)
	if err != nil || md.Cluster == "" || len(md.Brokers) != 1 || md.Controller != 0 {
		t.Fatalf("metadata %+v %v", md, err)
	}
	brs, err := adm.DescribeBrokerConfigs(ctx, 0)
	if err != nil || len(brs) != 1 || brs[0].Err != nil || len(brs[0].Configs) < len(topicConfigs) {
		t.Fatalf("broker configs %v %+v", err, brs)
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if dp, ok := dirs[0].LookupPartition("cfg", 0); !ok || dp.Size <= 0 {
		t.Fatalf("log dir size %+v %v", dp, ok)
	}
	id := b.topic("cfg").id

	// Everything survives a restart: topics.json and the logs.
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	b2 := startBroker(t, o)
	_, adm2 := newAdmin(t, b2.Addr())
	if c := configOf(t, adm2, "cfg", "retention.ms"); c.MaybeValue() != "86400000" {
		t.Fatalf("after restart retention.ms %s", c.MaybeValue())
	}
	t2 := b2.topic("cfg")
	if t2 == nil || t2.id != id || len(t2.parts) != 4 || t2.parts[0].log.LogStartOffset() != 4 || t2.parts[0].log.HighWatermark() != 12 {
		t.Fatalf("after restart: %+v", t2)
	}

	// Delete removes the data.
	if r, err := adm2.DeleteTopic(ctx, "cfg"); err != nil || r.Err != nil {
		t.Fatalf("delete: %v %v", err, r.Err)
	}
	if _, err := os.Stat(filepath.Join(o.Dir, "cfg-0")); !os.IsNotExist(err) {
		t.Fatalf("partition dir left behind: %v", err)
	}
	if r, _ := adm2.DeleteTopic(ctx, "cfg"); !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("second delete: %v", r.Err)
	}
}

func TestKafkaGoConnAdmin(t *testing.T) {
	b := startBroker(t, testOptions(t))
	conn, err := kafka.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.CreateTopics(kafka.TopicConfig{Topic: "kgo-admin", NumPartitions: 5, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "60000"}}}); err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions("kgo-admin")
	if err != nil || len(parts) != 5 {
		t.Fatalf("partitions %v %v", parts, err)
	}
	ctl, err := conn.Controller()
	if err != nil || ctl.ID != 0 {
		t.Fatalf("controller %+v %v", ctl, err)
	}
	if err := conn.DeleteTopics("kgo-admin"); err != nil {
		t.Fatal(err)
	}
	if b.topic("kgo-admin") != nil {
		t.Fatal("not deleted")
	}
}

func TestAutoCreateAndAdvertisedAddress(t *testing.T) {
	o := testOptions(t)
	o.AdvertisedHost, o.AdvertisedPort = "kafka.example", 19092
	o.DefaultPartitions = 4
	b := startBroker(t, o)
	c := dialRaw(t, b.Addr())
	c.send(metadataReq(12, "auto"))
	md := &kmsg.MetadataResponse{Version: 12}
	c.read(md)
	if md.Brokers[0].Host != "kafka.example" || md.Brokers[0].Port != 19092 {
		t.Fatalf("advertised %s:%d", md.Brokers[0].Host, md.Brokers[0].Port)
	}
	if len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 4 {
		t.Fatalf("auto-created %+v", md.Topics)
	}
	// A client that does not allow auto-creation does not create.
	req := metadataReq(12, "not-auto")
	req.AllowAutoTopicCreation = false
	c.send(req)
	md = &kmsg.MetadataResponse{Version: 12}
	c.read(md)
	if md.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || b.topic("not-auto") != nil {
		t.Fatalf("created without permission: %+v", md.Topics[0])
	}

	o2 := testOptions(t)
	o2.AutoCreateTopics = false
	b2 := startBroker(t, o2)
	c2 := dialRaw(t, b2.Addr())
	c2.send(metadataReq(12, "nope"), produceReq(-1, "nope", 0, batch(1, 0, nil)))
	md = &kmsg.MetadataResponse{Version: 12}
	c2.read(md)
	pr := &kmsg.ProduceResponse{Version: 9}
	c2.read(pr)
	if md.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || pr.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("auto-create off: metadata %d produce %d", md.Topics[0].ErrorCode, pr.Topics[0].Partitions[0].ErrorCode)
	}
}

func TestListOffsetsByTimestamp(t *testing.T) {
	b := startBroker(t, testOptions(t))
	_, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "times"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	p := b.partition("times", 0)
	for i, ts := range []int64{1000, 2000, 3000} {
		if _, err := p.log.Append(batch(2, ts, []byte(strconv.Itoa(i)))); err != nil {
			t.Fatal(err)
		}
	}
	for ts, want := range map[int64]int64{0: 0, 1500: 2, 2000: 2, 3000: 4, 3001: -1} {
		lo, err := adm.ListOffsetsAfterMilli(ctx, ts, "times")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := lo.Lookup("times", 0)
		// kadm answers "none after" with the end offset, as the Kafka protocol's -1 means.
		if want == -1 {
			want = 6
		}
		if got.Offset != want {
			t.Errorf("after %d: offset %d, want %d", ts, got.Offset, want)
		}
	}
	// One request per timestamp: Kafka answers a partition named twice in one request
	// with INVALID_REQUEST (TestListOffsetsDuplicatesAndLeaderEpoch).
	c := dialRaw(t, b.Addr())
	var ps []kmsg.ListOffsetsResponseTopicPartition
	for _, ts := range []int64{-2, -1, -3} {
		lr := kmsg.NewPtrListOffsetsRequest()
		lr.Version = 7
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = "times"
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Timestamp = ts
		lt.Partitions = append(lt.Partitions, lp)
		lr.Topics = append(lr.Topics, lt)
		c.send(lr)
		resp := &kmsg.ListOffsetsResponse{Version: 7}
		c.read(resp)
		ps = append(ps, resp.Topics[0].Partitions[0])
	}
	if ps[0].Offset != 0 || ps[1].Offset != 6 || ps[2].Offset != 5 || ps[2].Timestamp != 3000 {
		t.Fatalf("earliest/latest/max-timestamp: %+v", ps)
	}
}

// Stop during a long-poll fetch returns promptly and leaks nothing (goleak in TestMain).
func TestStopDuringLongPoll(t *testing.T) {
	o := testOptions(t)
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, b.Addr())
	c.send(metadataReq(12, "stopping"))
	c.read(&kmsg.MetadataResponse{Version: 12})
	c.send(fetchReq("stopping", 0, 0, 600_000))
	waitFetchWaiting(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(ctx); err != nil {
		t.Fatal("second Stop:", err)
	}
	c.expectClosed()
}

// setWriteFile makes topics.json writes go through f until the test ends.
func setWriteFile(t *testing.T, f func(path string, data []byte) error) {
	writeTopicsFile.Store(&f)
	t.Cleanup(func() { writeTopicsFile.Store(nil) })
}

// A topic deletion whose new topics.json is in place but whose directory fsync failed
// is a deletion: the file no longer lists the topic, so a broker that kept it would take
// records that the next start deletes with the topic's directories. The client hears
// KAFKA_STORAGE_ERROR saying a power cut may bring the topic back.
func TestDeleteTopicNotSyncedStillDeletes(t *testing.T) {
	o := testOptions(t)
	b := startBroker(t, o)
	if _, terr := b.createTopic("gone", 1, 1, nil, false); terr != nil {
		t.Fatal(terr.msg)
	}
	setWriteFile(t, func(path string, data []byte) error {
		if err := fsutil.WriteFile(path, data); err != nil {
			return err
		}
		return fmt.Errorf("%w: input/output error", fsutil.ErrNotSynced)
	})
	te := b.deleteTopic("gone")
	writeTopicsFile.Store(nil)
	if te == nil || te.err != kerr.KafkaStorageError || !strings.Contains(te.msg, "power cut") {
		t.Fatalf("deletion not synced answered %+v, want KAFKA_STORAGE_ERROR saying so", te)
	}
	if b.topic("gone") != nil {
		t.Fatal("the topic lives on in the broker although topics.json no longer lists it")
	}
	if _, err := os.Stat(b.partitionDir("gone", 0)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("partition directory of the deleted topic: %v", err)
	}
}

// A topic creation, partition addition or config change whose new topics.json is in
// place but whose directory fsync failed (fsutil.ErrNotSynced) is kept, as the next start
// will load it (a deletion is kept too, above); the client hears KAFKA_STORAGE_ERROR
// saying so. The new partitions take no records while topics.json cannot be synced: a
// power cut may bring back the file without them, and the next start would delete their
// directories with the acknowledged records. A save that fails outright changes nothing.
func TestTopicChangesNotSyncedAreKept(t *testing.T) {
	o := testOptions(t)
	b := startBroker(t, o)
	_, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "synced"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	var failing atomic.Pointer[error] // nil, or the error a save returns (ErrNotSynced: after writing the file)
	fail := func(err error) { failing.Store(&err) }
	setWriteFile(t, func(path string, data []byte) error {
		if e := failing.Load(); e != nil {
			err := *e
			if errors.Is(err, fsutil.ErrNotSynced) {
				if werr := fsutil.WriteFile(path, data); werr != nil {
					return werr
				}
			}
			return err
		}
		return fsutil.WriteFile(path, data)
	})
	fail(fmt.Errorf("%w: input/output error", fsutil.ErrNotSynced))

	if r, err := adm.CreateTopic(ctx, 2, 1, nil, "made"); !errors.Is(r.Err, kerr.KafkaStorageError) {
		t.Fatalf("create: %v %v, want KAFKA_STORAGE_ERROR", err, r.Err)
	}
	if rs, err := adm.UpdatePartitions(ctx, 3, "made"); err != nil || !errors.Is(rs["made"].Err, kerr.KafkaStorageError) {
		t.Fatalf("add partitions: %v %+v, want KAFKA_STORAGE_ERROR", err, rs)
	}
	ret := "12345"
	if rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: &ret}}, "made"); err != nil ||
		!errors.Is(rs[0].Err, kerr.KafkaStorageError) {
		t.Fatalf("alter: %v %+v, want KAFKA_STORAGE_ERROR", err, rs)
	}
	if tp := b.topic("made"); tp == nil || len(b.snapshot(tp).parts) != 3 || b.partition("made", 0).log.Options().RetentionMS != 12345 {
		t.Fatal("the broker undid changes topics.json holds")
	}
	produce := func(topic string, p int32) int16 {
		t.Helper()
		resp := roundTrip[*kmsg.ProduceResponse](t, b.Addr(), produceReq(-1, topic, p, batch(1, 1000, []byte("r"))))
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	for _, p := range []int32{0, 2} {
		if code := produce("made", p); code != kerr.KafkaStorageError.Code {
			t.Fatalf("append to unsynced partition %d: %v, want KAFKA_STORAGE_ERROR", p, kerr.ErrorForCode(code))
		}
		if hwm := b.partition("made", p).log.HighWatermark(); hwm != 0 {
			t.Fatalf("partition %d took records while unsynced", p)
		}
	}
	if code := produce("synced", 0); code != 0 {
		t.Fatalf("append to a synced topic: %v", kerr.ErrorForCode(code))
	}

	// A save that fails before the rename changes nothing, here or on disk.
	fail(errors.New("cannot write topics.json.tmp: no space left on device"))
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "lost"); !errors.Is(r.Err, kerr.KafkaStorageError) {
		t.Fatalf("create: %v %v, want KAFKA_STORAGE_ERROR", err, r.Err)
	}
	if b.topic("lost") != nil {
		t.Fatal("a topic topics.json does not list was kept")
	}

	// Once topics.json can be synced, the next append saves it and goes ahead.
	failing.Store(nil)
	for _, p := range []int32{0, 2} {
		if code := produce("made", p); code != 0 {
			t.Fatalf("append to partition %d once synced: %v", p, kerr.ErrorForCode(code))
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := startBroker(t, o)
	tp := b2.topic("made")
	if tp == nil || len(b2.snapshot(tp).parts) != 3 || b2.snapshot(tp).configs["retention.ms"] != "12345" || b2.topic("lost") != nil {
		t.Fatalf("after restart: %+v, lost %v", tp, b2.topic("lost") != nil)
	}
	for _, p := range []int32{0, 2} {
		if hwm := b2.partition("made", p).log.HighWatermark(); hwm != 1 {
			t.Fatalf("partition %d after restart: high watermark %d, want 1", p, hwm)
		}
	}
}

// A topic created again while its deletion is still removing the old partition
// directories (the name is out of the registry first) waits for that deletion: the old
// deletion removed the new topic's directories under it, so records acknowledged by the
// new topic went with them and its logs failed to close (found by TestChaos: "cannot
// close chaos-s1-0: cannot create .../00000000000000000000.index.tmp").
func TestCreateTopicDuringItsDeletion(t *testing.T) {
	o := testOptions(t)
	b := startBroker(t, o)
	if _, terr := b.createTopic("again", 1, 1, nil, false); terr != nil {
		t.Fatal(terr.msg)
	}
	old := b.partition("again", 0)
	old.appendMu.Lock() // an append in progress: the deletion waits for it
	deleted := make(chan *topicError, 1)
	go func() { deleted <- b.deleteTopic("again") }()
	waitFor(t, "the topic out of the registry", func() bool { return b.topic("again") == nil })
	created := make(chan *topicError, 1)
	go func() {
		_, terr := b.createTopic("again", 1, 1, nil, false)
		created <- terr
	}()
	old.appendMu.Unlock()
	if te := <-deleted; te != nil {
		t.Fatalf("delete: %v", te.msg)
	}
	if te := <-created; te != nil {
		t.Fatalf("create again: %v", te.msg)
	}
	if _, err := os.Stat(b.partitionDir("again", 0)); err != nil {
		t.Fatalf("the new topic's partition directory: %v", err)
	}
	produceTo(t, b, "again", 0, 3)
	b = restartBroker(t, b, o)
	if hwm := b.partition("again", 0).log.HighWatermark(); hwm != 3 {
		t.Fatalf("after a restart the new topic has %d records, want 3", hwm)
	}
}
