// Command txnproducer writes transactions for scripts/interop.sh: one committed
// transaction (c1, c2), one aborted (a1, a2), one committed (c3), with franz-go's
// transactional producer, to one partition of a topic.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	addr := flag.String("brokers", "127.0.0.1:9092", "bootstrap server")
	topic := flag.String("topic", "txn", "topic (partition 0)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(*addr), kgo.TransactionalID("interop-txn"), kgo.DefaultProduceTopic(*topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer cl.Close()
	for _, txn := range []struct {
		commit bool
		values []string
	}{{true, []string{"c1", "c2"}}, {false, []string{"a1", "a2"}}, {true, []string{"c3"}}} {
		if err := cl.BeginTransaction(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, v := range txn.values {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(txn.commit)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
