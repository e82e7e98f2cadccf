package streaming

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tagpipe/tagpipe/internal/kafkasec/kafkasectest"
	"github.com/tagpipe/tagpipe/streaming/internal/testkafka"
)

// TestEngineSASLSSL: the engine reads a SASL_SSL (SCRAM-SHA-512) topic end to end:
// metadata, offsets and fetches through kafka-go, the topic ids through kafkasec.Conn
// (recorded in the checkpoint), and Lag; a KafkaSink writes back to the cluster.
func TestEngineSASLSSL(t *testing.T) {
	cl, s := kafkasectest.SASLSSL(t, kfake.SeedTopics(2, "events"), kfake.SeedTopics(1, "copy"))
	addrs := cl.ListenAddrs()
	recs := make([]testkafka.Record, 60)
	for i := range recs {
		recs[i] = testkafka.Record{Partition: int32(i % 2), Value: fmt.Appendf(nil, "e%d", i)}
	}
	testkafka.Produce(t, addrs, "events", recs, s.KgoOpts()...)

	k, err := NewKafkaSink(KafkaSinkOptions{Brokers: addrs, Security: s, Topic: "copy"})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	dir := t.TempDir()
	col := newCollected()
	j := collectJob(col, 10*time.Millisecond)
	ToKafka(Input(j), "topic:copy", k, func(r Record) ([]byte, []byte) { return nil, r.Value })
	o := lossOpts(addrs, dir, col, true)
	o.Security = s
	runEngine(t, j, o, col, 60)
	assertExactlyOnce(t, col, map[int32]int64{0: 30, 1: 30})
	id := topicID(t, addrs, s.KgoOpts()...)
	if p := lastPlan(t, dir); id == "" || p.TopicIDs["events"] != id {
		t.Fatalf("checkpoint holds topic ids %v, want events: %s", p.TopicIDs, id)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lags, err := Lag(ctx, addrs, s, []string{"events"}, nil, map[TopicPartition]int64{{Topic: "events", Partition: 0}: 30, {Topic: "events", Partition: 1}: 10})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, l := range lags {
		total += l.Lag
	}
	if len(lags) != 2 || total != 20 {
		t.Fatalf("lag %+v", lags)
	}

	ends, err := admin(t, addrs, s.KgoOpts()...).ListEndOffsets(ctx, "copy")
	if err != nil {
		t.Fatal(err)
	}
	if n := ends["copy"][0].Offset; n != 60 {
		t.Fatalf("copy holds %d records written by the KafkaSink, want 60", n)
	}
}
