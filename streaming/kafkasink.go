package streaming

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/tagpipe/tagpipe/internal/kafkacodec"
	"github.com/tagpipe/tagpipe/internal/kafkasec"
)

// KafkaSinkOptions configure a KafkaSink.
type KafkaSinkOptions struct {
	Brokers []string
	// Security is TLS and SASL for the brokers; nil = PLAINTEXT.
	Security *kafkasec.Security
	Topic    string
	// Compression is none (default), gzip, snappy, lz4 or zstd.
	Compression string
	// WriteTimeout bounds one batch's write; 0 = 30s.
	WriteTimeout time.Duration
}

// KafkaSink writes a stream's items to a Kafka topic at every batch, with kafka-go and
// acks=all: Spark's writeStream.format("kafka"). Like Spark's Kafka sink it is
// at-least-once: a batch replayed after a crash, or retried after a failed output, writes
// its records again. Every record carries the headers tagpipe.pipeline and
// tagpipe.batch_id, so a consumer that needs each record once keeps the first of a
// (pipeline, batch_id, key) it sees.
type KafkaSink struct {
	topic string
	w     *kafka.Writer
	tr    *kafka.Transport
}

// Record headers of a KafkaSink's records.
const (
	HeaderPipeline = "tagpipe.pipeline"
	HeaderBatchID  = "tagpipe.batch_id"
)

// NewKafkaSink checks the options; Close releases the writer.
func NewKafkaSink(o KafkaSinkOptions) (*KafkaSink, error) {
	if len(o.Brokers) == 0 || o.Topic == "" {
		return nil, errors.New("kafka sink: brokers and topic must be set")
	}
	codec, err := kafkacodec.KafkaGo(o.Compression)
	if err != nil {
		return nil, fmt.Errorf("kafka sink: %w", err)
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	tr := o.Security.Transport(&kafka.Transport{ClientID: "tagpipe-streaming-sink", IdleTimeout: 30 * time.Second})
	w := &kafka.Writer{Addr: kafka.TCP(o.Brokers...), Topic: o.Topic, Balancer: &kafka.Hash{}, Transport: tr,
		RequiredAcks: kafka.RequireAll, Compression: codec, WriteTimeout: o.WriteTimeout,
		BatchSize: 10000, BatchBytes: 16 << 20, BatchTimeout: time.Millisecond, AllowAutoTopicCreation: true}
	return &KafkaSink{topic: o.Topic, w: w, tr: tr}, nil
}

// Topic is the topic the sink writes.
func (k *KafkaSink) Topic() string { return k.topic }

// Close flushes the writer and closes its connections.
func (k *KafkaSink) Close() error {
	err := k.w.Close()
	k.tr.CloseIdleConnections()
	return err
}

// ToKafka adds an output that writes s's items to k at every batch; encode gives each
// item's key (nil: spread over the partitions) and value. The batch succeeds once every
// record is acknowledged; a failure fails the batch, which is retried.
func ToKafka[T any](s *Stream[T], name string, k *KafkaSink, encode func(T) (key, value []byte)) {
	job := s.job.name
	ForeachBatch(s, name, func(ctx context.Context, b BatchInfo, items []T) error {
		if len(items) == 0 {
			return nil
		}
		hs := []kafka.Header{{Key: HeaderPipeline, Value: []byte(job)}, {Key: HeaderBatchID, Value: strconv.AppendInt(nil, b.ID, 10)}}
		msgs := make([]kafka.Message, len(items))
		for i, it := range items {
			key, val := encode(it)
			msgs[i] = kafka.Message{Key: key, Value: val, Headers: hs, Time: b.Time}
		}
		if err := k.w.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("cannot write batch %d to topic %s: %w", b.ID, k.topic, err)
		}
		return nil
	})
}
