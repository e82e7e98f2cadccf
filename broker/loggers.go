package broker

// Broker loggers (config resource type BROKER_LOGGER, 8; KIP-412): DescribeConfigs lists
// the process's loggers (internal/logging.Levels: root, broker, groups, and in `tagpipe
// up` the root is every room's) with their effective level in log4j's names;
// IncrementalAlterConfigs SETs a logger's level or DELETEs it (the logger follows the
// root again) at run time, as Kafka's Log4jController / LoggingController. Levels are
// not kept across a restart, as in Kafka.

import (
	"log/slog"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/internal/logging"
)

// kafkaLogLevels are the levels Kafka accepts for a broker logger (LogLevelConfig
// VALID_LOG_LEVELS), as slog levels: TRACE below debug, FATAL above error.
var kafkaLogLevels = []struct {
	name  string
	level slog.Level
}{
	{"FATAL", slog.LevelError + 4},
	{"ERROR", slog.LevelError},
	{"WARN", slog.LevelWarn},
	{"INFO", slog.LevelInfo},
	{"DEBUG", slog.LevelDebug},
	{"TRACE", slog.LevelDebug - 4},
}

// kafkaLogLevelName is lv in log4j's names: the most severe level at or below it.
func kafkaLogLevelName(lv slog.Level) string {
	for _, l := range kafkaLogLevels {
		if lv >= l.level {
			return l.name
		}
	}
	return "TRACE"
}

// checkLoggerBroker is Kafka's check of a BROKER_LOGGER resource name: this node's id.
func (b *Broker) checkLoggerBroker(name string) *topicError {
	if name == "" {
		return terr(kerr.InvalidRequest, "Broker id must not be empty")
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return terr(kerr.InvalidRequest, "Broker id must be an integer, but it is: %s", name)
	}
	if int32(id) != b.opts.NodeID {
		return terr(kerr.InvalidRequest, "Unexpected broker id, expected %d, but received %s", b.opts.NodeID, name)
	}
	return nil
}

// describeLoggers is a DescribeConfigs answer for the broker's loggers: every one (want
// filters), source DYNAMIC_BROKER_LOGGER_CONFIG, no synonyms, as Kafka's ConfigHelper.
func (b *Broker) describeLoggers(want func(string) bool) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, l := range b.levels.List() {
		if !want(l.Name) {
			continue
		}
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		v := kafkaLogLevelName(l.Level)
		rc.Name, rc.Value = l.Name, &v
		rc.Source = kmsg.ConfigSourceDynamicBrokerLoggerConfig
		rc.ConfigType = kmsg.ConfigTypeString
		out = append(out, rc)
	}
	return out
}

// alterLoggers applies one IncrementalAlterConfigs resource to the broker's loggers, as
// Kafka's ConfigAdminManager.validateLogLevelConfigs: every operation is checked first
// (an unknown logger or level INVALID_CONFIG; APPEND, SUBTRACT and removing the root's
// level INVALID_REQUEST), then all are applied, unless validateOnly.
func (b *Broker) alterLoggers(rr *kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) *topicError {
	if te := b.checkLoggerBroker(rr.ResourceName); te != nil {
		return te
	}
	levels := make([]slog.Level, len(rr.Configs))
	seen := map[string]bool{}
	for i, cfg := range rr.Configs {
		if seen[cfg.Name] {
			return terr(kerr.InvalidRequest, "config %q is named more than once", cfg.Name)
		}
		seen[cfg.Name] = true
		switch cfg.Op {
		case kmsg.IncrementalAlterConfigOpSet, kmsg.IncrementalAlterConfigOpDelete:
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			return terr(kerr.InvalidRequest, "%s operation is not allowed for the BROKER_LOGGER resource", cfg.Op)
		default:
			return terr(kerr.InvalidRequest, "unknown operation %d on %q", cfg.Op, cfg.Name)
		}
		if !b.levels.Has(cfg.Name) {
			return terr(kerr.InvalidConfig, "Logger %s does not exist!", cfg.Name)
		}
		if cfg.Op == kmsg.IncrementalAlterConfigOpDelete {
			if cfg.Name == logging.RootLogger {
				return terr(kerr.InvalidRequest, "Removing the log level of the %s logger is not allowed", logging.RootLogger)
			}
			continue
		}
		valid := make([]string, len(kafkaLogLevels))
		found := false
		for j, l := range kafkaLogLevels {
			valid[j] = l.name
			if cfg.Value != nil && *cfg.Value == l.name {
				levels[i], found = l.level, true
			}
		}
		if !found {
			v := "null"
			if cfg.Value != nil {
				v = *cfg.Value
			}
			return terr(kerr.InvalidConfig, "Cannot set the log level of %s to %s as it is not a supported log level. Valid log levels are %s",
				cfg.Name, v, strings.Join(valid, ", "))
		}
	}
	if validateOnly {
		return nil
	}
	for i, cfg := range rr.Configs {
		var err error
		if cfg.Op == kmsg.IncrementalAlterConfigOpDelete {
			err = b.levels.Unset(cfg.Name)
		} else {
			err = b.levels.Set(cfg.Name, levels[i])
		}
		if err != nil { // checked above, and loggers are never forgotten
			panic("BUG: broker logger " + cfg.Name + ": " + err.Error())
		}
		if cfg.Op == kmsg.IncrementalAlterConfigOpDelete {
			b.log.Info("log level removed: the logger follows the root", "logger", cfg.Name)
		} else {
			b.log.Info("log level set", "logger", cfg.Name, "level", kafkaLogLevelName(levels[i]))
		}
	}
	return nil
}
