package tagging

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tagpipe/tagpipe/internal/kafkasec/kafkasectest"
)

// TestExportKafkaSASLSSL: an audience goes to a SASL_SSL cluster, members and a
// tombstone.
func TestExportKafkaSASLSSL(t *testing.T) {
	cluster, s := kafkasectest.SASLSSL(t, kfake.SeedTopics(1, "audience"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ExportKafka(ctx, cluster.ListenAddrs(), s, "audience", "fans", "2026-11-26", []string{"u1", "u2"}, []string{"u3"}); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(s.KgoOpts(), kgo.SeedBrokers(cluster.ListenAddrs()...))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, "audience")
	if err != nil {
		t.Fatal(err)
	}
	if n := ends["audience"][0].Offset; n != 3 {
		t.Fatalf("audience holds %d records, want 3", n)
	}
}
