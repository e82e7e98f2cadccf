package console

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tagpipe/tagpipe/internal/kafkasec/kafkasectest"
)

// TestStatusSASLSSL: the topic panel reads a SASL_SSL cluster.
func TestStatusSASLSSL(t *testing.T) {
	cluster, s := kafkasectest.SASLSSL(t, kfake.SeedTopics(2, "events"))
	con := New(Options{Bootstrap: cluster.ListenAddrs(), Security: s})
	defer con.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := con.Status(ctx)
	if st.Errors[panelBroker] != "" || len(st.Topics) != 1 || st.Topics[0].Name != "events" || len(st.Topics[0].Partitions) != 2 {
		t.Fatalf("topics %+v, errors %v", st.Topics, st.Errors)
	}
}
