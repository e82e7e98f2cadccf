//go:build tagpipe_deps

// Package deps pins the modules rooms are about to use so go.sum holds them while the
// rooms land in parallel. Removed once every module here is imported for real.
package deps

import (
	_ "github.com/IBM/sarama"
	_ "github.com/apache/arrow-go/v18/parquet/pqarrow"
	_ "github.com/duckdb/duckdb-go/v2"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/pgproto3"
	_ "github.com/robfig/cron/v3"
	_ "github.com/segmentio/kafka-go"
	_ "github.com/segmentio/kafka-go/compress/lz4"
	_ "github.com/spf13/cobra"
	_ "github.com/twmb/franz-go/pkg/kadm"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "github.com/twmb/franz-go/pkg/kgo"
	_ "github.com/twmb/franz-go/pkg/kmsg"
	_ "go.uber.org/goleak"
)
