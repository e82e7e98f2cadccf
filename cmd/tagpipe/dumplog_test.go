package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tagpipe/tagpipe/broker"
)

// TestDumpLogCommand: records a real client produced (snappy, with headers) read back
// from the stopped broker's files with tagpipe dump-log, as kafka-dump-log.sh shows them.
func TestDumpLogCommand(t *testing.T) {
	dir := t.TempDir()
	b := startTestBrokerWith(t, func(o *broker.Options) { o.Dir = filepath.Join(dir, "broker") })
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("t"), kgo.ProducerBatchCompression(kgo.SnappyCompression()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs := []*kgo.Record{
		{Key: []byte("u1"), Value: []byte("hello"), Headers: []kgo.RecordHeader{{Key: "src", Value: []byte("web")}}},
		{Value: []byte("line\twith tab")},
		{Value: []byte(strings.Repeat("x", 500))}, // so that snappy pays and franz-go keeps it
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	stop, cancelStop := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelStop()
	if err := b.Stop(stop); err != nil {
		t.Fatal(err)
	}
	out := runTagpipe(t, "--data-dir", dir, "dump-log", "--topic", "t", "--partition", "0", "--print-data-log", "--index-sanity-check")
	for _, want := range []string{
		"broker/t-0/00000000000000000000.log\nLog starting offset: 0\nbaseOffset: 0 lastOffset: 2 count: 3 ",
		"producerId: ", " compresscodec: snappy crcValid: true\n",
		" keySize: 2 valueSize: 5 sequence: 0 headerKeys: [src] key: u1 payload: hello\n",
		" keySize: -1 valueSize: 13 sequence: 1 headerKeys: [] payload: \"line\\twith tab\"\n",
		" keySize: -1 valueSize: 500 sequence: 2 headerKeys: [] payload: xxx",
		"00000000000000000000.timeindex passed the sanity check.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dump-log lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, ".log\n") > strings.Index(out, ".index\n") {
		t.Errorf("a segment's .log is not printed first:\n%s", out)
	}
}
