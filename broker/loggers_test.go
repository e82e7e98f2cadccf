package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// messages is a slog handler at info that sends each record's message to a channel.
type messages chan string

func (m messages) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelInfo }
func (m messages) Handle(_ context.Context, r slog.Record) error {
	select {
	case m <- r.Message:
	default: // the test reads only what it waits for
	}
	return nil
}
func (m messages) WithAttrs([]slog.Attr) slog.Handler { return m }
func (m messages) WithGroup(string) slog.Handler      { return m }

// TestBrokerLoggers: DescribeConfigs of BROKER_LOGGER lists the broker's loggers at the
// handler's level (INFO); IncrementalAlterConfigs sets the "broker" logger to DEBUG and
// its debug records are then written, though the handler's own level is info; DELETE
// makes it follow the root again. Kafka's refusals: another broker id, an unknown logger
// or level, APPEND, removing the root's level; validate_only changes nothing.
func TestBrokerLoggers(t *testing.T) {
	msgs := make(messages, 64)
	o := testOptions(t)
	o.Logger = slog.New(msgs)
	b := startBroker(t, o)
	cl, _ := newAdmin(t, b.Addr())
	ctx := testCtx(t)

	describe := func(name string, keys ...string) (map[string]string, *kmsg.DescribeConfigsResponseResource) {
		t.Helper()
		req := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeBrokerLogger, name, keys
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(ctx, cl.Broker(0)) // not routed by the resource name: "1" is asked of broker 0
		if err != nil {
			t.Fatal(err)
		}
		r := &resp.Resources[0]
		got := map[string]string{}
		for _, c := range r.Configs {
			if c.Source != kmsg.ConfigSourceDynamicBrokerLoggerConfig || c.ReadOnly || c.Value == nil {
				t.Errorf("logger %s: source %v, read-only %v", c.Name, c.Source, c.ReadOnly)
				continue
			}
			got[c.Name] = *c.Value
		}
		return got, r
	}
	alter := func(validateOnly bool, name string, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) error {
		t.Helper()
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.ValidateOnly = validateOnly
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.Configs = kmsg.ConfigResourceTypeBrokerLogger, name, ops
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(ctx, cl.Broker(0)) // not routed by the resource name: "1" is asked of broker 0
		if err != nil {
			t.Fatal(err)
		}
		r := resp.Resources[0]
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			msg := ""
			if r.ErrorMessage != nil {
				msg = *r.ErrorMessage
			}
			return fmt.Errorf("%s: %s", err.(*kerr.Error).Message, msg)
		}
		return nil
	}
	op := func(o kmsg.IncrementalAlterConfigOp, name, value string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Op, c.Name, c.Value = o, name, &value
		return c
	}

	got, _ := describe("0")
	if len(got) != 3 || got["root"] != "INFO" || got["broker"] != "INFO" || got["groups"] != "INFO" {
		t.Fatalf("loggers: %v", got)
	}
	if err := alter(true, "0", op(kmsg.IncrementalAlterConfigOpSet, "broker", "DEBUG")); err != nil {
		t.Fatal(err)
	}
	if got, _ := describe("0", "broker"); len(got) != 1 || got["broker"] != "INFO" {
		t.Fatalf("after validate_only: %v", got)
	}
	if err := alter(false, "0", op(kmsg.IncrementalAlterConfigOpSet, "broker", "DEBUG")); err != nil {
		t.Fatal(err)
	}
	if got, _ := describe("0"); got["root"] != "INFO" || got["broker"] != "DEBUG" || got["groups"] != "INFO" {
		t.Fatalf("after SET broker=DEBUG: %v", got)
	}
	// A frame cut short is a debug record of the "broker" logger.
	nc, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = nc.Write([]byte{0, 0, 0, 100, 1, 2})
	nc.Close()
	waitMessage(t, msgs, "connection read failed mid-frame")

	if err := alter(false, "0", op(kmsg.IncrementalAlterConfigOpDelete, "broker", ""), op(kmsg.IncrementalAlterConfigOpSet, "root", "WARN")); err != nil {
		t.Fatal(err)
	}
	if got, _ := describe("0"); got["root"] != "WARN" || got["broker"] != "WARN" || got["groups"] != "WARN" {
		t.Fatalf("after DELETE broker, SET root=WARN: %v", got)
	}

	for _, tc := range []struct {
		name string
		ops  []kmsg.IncrementalAlterConfigsRequestResourceConfig
		want string
	}{
		{"1", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op(kmsg.IncrementalAlterConfigOpSet, "root", "INFO")}, "INVALID_REQUEST: Unexpected broker id, expected 0, but received 1"},
		{"", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op(kmsg.IncrementalAlterConfigOpSet, "root", "INFO")}, "INVALID_REQUEST: Broker id must not be empty"},
		{"0", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op(kmsg.IncrementalAlterConfigOpSet, "kafka.server", "INFO")}, "INVALID_CONFIG: Logger kafka.server does not exist!"},
		{"0", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op(kmsg.IncrementalAlterConfigOpSet, "root", "info")}, "INVALID_CONFIG: Cannot set the log level of root to info as it is not a supported log level. Valid log levels are FATAL, ERROR, WARN, INFO, DEBUG, TRACE"},
		{"0", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op(kmsg.IncrementalAlterConfigOpAppend, "root", "INFO")}, "INVALID_REQUEST: APPEND operation is not allowed for the BROKER_LOGGER resource"},
		{"0", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op(kmsg.IncrementalAlterConfigOpDelete, "root", "")}, "INVALID_REQUEST: Removing the log level of the root logger is not allowed"},
		// One bad operation: none is applied.
		{"0", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op(kmsg.IncrementalAlterConfigOpSet, "groups", "TRACE"), op(kmsg.IncrementalAlterConfigOpSet, "nosuch", "INFO")}, "Logger nosuch does not exist!"},
	} {
		if err := alter(false, tc.name, tc.ops...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("alter %q %v: %v, want %q", tc.name, tc.ops, err, tc.want)
		}
	}
	if got, _ := describe("0", "groups"); got["groups"] != "WARN" {
		t.Fatalf("a refused alter changed groups: %v", got)
	}
	if _, r := describe("7"); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("describe broker 7's loggers: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// waitMessage waits for a log record with msg (bounded: the test's failure, not a
// timing assertion).
func waitMessage(t *testing.T, msgs messages, msg string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m := <-msgs:
			if m == msg {
				return
			}
		case <-deadline:
			t.Fatalf("no %q logged", msg)
		}
	}
}

// TestGroupsLogger: the "groups" logger says what Kafka's GroupCoordinator says at INFO
// (a rebalance prepared, a group stabilized at its generation, a group become empty),
// and with groups=DEBUG also each commit, so setting it changes what is logged.
func TestGroupsLogger(t *testing.T) {
	msgs := make(messages, 256)
	o := groupTestOptions(t)
	o.Logger = slog.New(msgs)
	b := startBroker(t, o)
	_, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "gl"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	produceSeq(t, b.Addr(), "gl", 0, 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup("gl-group"), kgo.ConsumeTopics("gl"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	waitMessage(t, msgs, "preparing to rebalance group")
	waitMessage(t, msgs, "stabilized group")
	cl.Close() // leaves the group
	waitMessage(t, msgs, "group is now empty")

	commit := func(at int64) {
		t.Helper()
		var offs kadm.Offsets
		offs.Add(kadm.Offset{Topic: "gl", Partition: 0, At: at, LeaderEpoch: -1})
		if r, err := adm.CommitOffsets(ctx, "gl-group", offs); err != nil || r.Error() != nil {
			t.Fatal(err, r.Error())
		}
	}
	commit(1) // at INFO: not logged (the handler runs before the answer)
	for len(msgs) > 0 {
		if m := <-msgs; m == "offsets committed" {
			t.Fatal("a commit logged at INFO")
		}
	}
	if err := b.levels.Set("groups", slog.LevelDebug); err != nil { // as configs --add-config groups=DEBUG (TestBrokerLoggers)
		t.Fatal(err)
	}
	commit(2)
	waitMessage(t, msgs, "offsets committed")
}
