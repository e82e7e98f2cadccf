// Package flumeconf reads a Flume agent .properties file (the file `flume-ng agent -f`
// takes) and turns one agent of it into an agent.Spec with tagpipe's key names, so Flume
// users can bring their configs. Supported: sources spooldir, TAILDIR, exec, netcat,
// syslogtcp, syslogudp, http, KafkaSource; channels memory, file; sinks kafka, logger,
// file_roll; interceptors timestamp, host, static, regex_filter, regex_extractor,
// search_replace, remove_header, UUID; replicating and multiplexing selectors; failover
// and load_balance sink groups. Anything else is rejected with its key.
package flumeconf

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/tagpipe/tagpipe/ingest/agent"
	"github.com/tagpipe/tagpipe/internal/kafkasec"
)

// ParseFile reads path and returns agent name's Spec.
func ParseFile(path, name string) (agent.Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return agent.Spec{}, fmt.Errorf("cannot read flume config: %w", err)
	}
	defer f.Close()
	props, err := ReadProperties(f)
	if err != nil {
		return agent.Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	spec, err := Convert(props, name)
	if err != nil {
		return agent.Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return spec, nil
}

// ReadProperties parses Java .properties text: "key = value", "key: value" or
// "key value"; # and ! comments; backslash line continuations and escapes.
func ReadProperties(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var pending string
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimLeft(sc.Text(), " \t\f")
		if pending == "" && (line == "" || line[0] == '#' || line[0] == '!') {
			continue
		}
		// An odd number of trailing backslashes continues the line.
		bs := len(line) - len(strings.TrimRight(line, `\`))
		if bs%2 == 1 {
			pending += line[:len(line)-1]
			continue
		}
		line = pending + line
		pending = ""
		k, v := splitKV(line)
		out[unescape(k)] = unescape(v)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if pending != "" {
		k, v := splitKV(pending)
		out[unescape(k)] = unescape(v)
	}
	return out, nil
}

func splitKV(line string) (string, string) {
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case '=', ':', ' ', '\t':
			k := line[:i]
			rest := strings.TrimLeft(line[i:], " \t")
			if len(rest) > 0 && (rest[0] == '=' || rest[0] == ':') {
				rest = strings.TrimLeft(rest[1:], " \t")
			}
			return k, strings.TrimRight(rest, " \t")
		}
	}
	return line, ""
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case 't':
				b.WriteByte('\t')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			default:
				b.WriteByte(s[i])
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Convert picks agent name's keys and maps them to a Spec.
func Convert(props map[string]string, name string) (agent.Spec, error) {
	spec := agent.Spec{Name: name, Where: name,
		Sources: map[string]map[string]string{}, Channels: map[string]map[string]string{},
		Sinks: map[string]map[string]string{}, SinkGroups: map[string]map[string]string{}}
	prefix := name + "."
	var errs []string
	fail := func(key, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	// Components are declared in "<agent>.sources = r1 r2"; keys of undeclared ones are
	// errors, as in Flume.
	declared := map[string]map[string]bool{}
	for _, kind := range []string{"sources", "channels", "sinks", "sinkgroups"} {
		declared[kind] = map[string]bool{}
		for _, n := range strings.Fields(props[prefix+kind]) {
			declared[kind][n] = true
		}
	}
	if len(declared["sources"]) == 0 {
		agents := map[string]bool{}
		for k := range props {
			if i := strings.Index(k, "."); i > 0 {
				agents[k[:i]] = true
			}
		}
		return spec, fmt.Errorf("no agent %q in the file (it has: %s)", name, strings.Join(sortedSet(agents), ", "))
	}
	raw := map[string]map[string]map[string]string{}
	for _, kind := range []string{"sources", "channels", "sinks", "sinkgroups"} {
		raw[kind] = map[string]map[string]string{}
		for n := range declared[kind] {
			raw[kind][n] = map[string]string{}
		}
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		rest := strings.TrimPrefix(k, prefix)
		parts := strings.SplitN(rest, ".", 3)
		kind := parts[0]
		if _, ok := declared[kind]; !ok {
			fail(k, "unknown key (want sources, channels, sinks or sinkgroups)")
			continue
		}
		if len(parts) == 1 {
			continue // the declaration itself
		}
		if len(parts) < 3 {
			fail(k, "incomplete key")
			continue
		}
		if !declared[kind][parts[1]] {
			fail(k, "%s %q is not declared in %s%s", strings.TrimSuffix(kind, "s"), parts[1], prefix, kind)
			continue
		}
		raw[kind][parts[1]][parts[2]] = props[k]
	}
	for n, m := range raw["sources"] {
		spec.Sources[n] = convertSource(prefix+"sources."+n, m, fail)
	}
	for n, m := range raw["channels"] {
		spec.Channels[n] = convertChannel(prefix+"channels."+n, m, fail)
	}
	for n, m := range raw["sinks"] {
		spec.Sinks[n] = convertSink(prefix+"sinks."+n, m, fail)
	}
	for n, m := range raw["sinkgroups"] {
		spec.SinkGroups[n] = convertGroup(prefix+"sinkgroups."+n, m, fail)
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return spec, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return spec, nil
}

func sortedSet(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type failFn func(key, format string, args ...any)

// rename maps Flume keys to tagpipe keys; "" drops a key that is accepted as a no-op.
type rename map[string]string

func apply(where string, in map[string]string, out map[string]string, names rename, prefixes rename, fail failFn) {
	for k, v := range in {
		if nk, ok := names[k]; ok {
			if nk != "" {
				out[nk] = v
			}
			continue
		}
		matched := false
		for p, np := range prefixes {
			if strings.HasPrefix(k, p) {
				out[np+strings.TrimPrefix(k, p)] = v
				matched = true
				break
			}
		}
		if !matched {
			fail(where+"."+k, "unsupported key")
		}
	}
}

func lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

var sourceTypes = map[string]string{
	"spooldir": "spooldir", "org.apache.flume.source.spooldirectorysource": "spooldir",
	"taildir": "taildir", "org.apache.flume.source.taildir.taildirsource": "taildir",
	"netcat": "tcp", "org.apache.flume.source.netcatsource": "tcp",
	"syslogtcp": "syslog", "org.apache.flume.source.syslogtcpsource": "syslog",
	"syslogudp": "syslog", "org.apache.flume.source.syslogudpsource": "syslog",
	"http": "http", "org.apache.flume.source.http.httpsource": "http",
	"exec": "exec", "org.apache.flume.source.execsource": "exec",
	"kafka": "kafka", "org.apache.flume.source.kafka.kafkasource": "kafka",
}

func convertSource(where string, in map[string]string, fail failFn) map[string]string {
	out := map[string]string{}
	ft := lower(in["type"])
	typ, ok := sourceTypes[ft]
	if !ok {
		fail(where+".type", "unsupported source type %q (supported: spooldir, TAILDIR, exec, netcat, syslogtcp, syslogudp, http, org.apache.flume.source.kafka.KafkaSource)", in["type"])
		return out
	}
	out["type"] = typ
	common := rename{"type": "", "channels": "channels", "selector.type": "selector.type", "selector.header": "selector.header",
		"selector.default": "selector.default", "selector.optional": "selector.optional", "interceptors": "interceptors"}
	prefixes := rename{"selector.mapping.": "selector.mapping.", "selector.optional.": "selector.optional."}
	var own rename
	switch typ {
	case "spooldir":
		own = rename{"spoolDir": "dir", "fileSuffix": "completed_suffix", "deletePolicy": "delete_policy",
			"fileHeader": "file_header", "basenameHeader": "basename_header", "includePattern": "include",
			"ignorePattern": "ignore", "trackerDir": "tracker_dir", "consumeOrder": "consume_order",
			"recursiveDirectorySearch": "recursive", "pollDelay": "poll_interval", "batchSize": "batch_size",
			"deserializer.maxLineLength": "max_line_bytes"}
		if v, ok := in["deserializer"]; ok && lower(v) != "line" {
			fail(where+".deserializer", "only the LINE deserializer is supported, not %q", v)
		}
		if v, ok := in["inputCharset"]; ok && lower(v) != "utf-8" {
			fail(where+".inputCharset", "only UTF-8 input is supported, not %q", v)
		}
		if v, ok := in["fileHeaderKey"]; ok && v != "file" {
			fail(where+".fileHeaderKey", "the file header is always \"file\"")
		}
		if v, ok := in["basenameHeaderKey"]; ok && v != "basename" {
			fail(where+".basenameHeaderKey", "the basename header is always \"basename\"")
		}
		for _, k := range []string{"deserializer", "inputCharset", "fileHeaderKey", "basenameHeaderKey"} {
			own[k] = ""
		}
		if v, ok := in["consumeOrder"]; ok && lower(v) != "oldest" {
			fail(where+".consumeOrder", "only consumeOrder = oldest is supported, not %q", v)
			delete(in, "consumeOrder")
		}
	case "taildir":
		own = rename{"filegroups": "filegroups", "positionFile": "position_file", "batchSize": "batch_size",
			"fileHeader": "file_header", "skipToEnd": "skip_to_end", "idleTimeout": "close_idle"}
		prefixes["filegroups."] = "filegroups."
		prefixes["headers."] = "headers."
		if v, ok := in["fileHeaderKey"]; ok && v != "file" {
			fail(where+".fileHeaderKey", "the file header is always \"file\"")
		}
		own["fileHeaderKey"] = ""
	case "exec":
		// restartThrottle and batchTimeout are milliseconds, as tagpipe's bare numbers.
		own = rename{"command": "command", "shell": "shell", "restart": "restart", "restartThrottle": "restart_throttle",
			"logStdErr": "log_stderr", "batchSize": "batch_size", "batchTimeout": "batch_timeout", "charset": ""}
		if v, ok := in["charset"]; ok && lower(v) != "utf-8" {
			fail(where+".charset", "only UTF-8 output is supported, not %q", v)
		}
	case "kafka":
		own = kafkaSource(where, in, out, fail)
	case "tcp":
		own = rename{"max-line-length": "max_line_bytes", "ack-every-event": "ack"}
		hostPort(where, in, out, "bind", "port", fail)
		own["bind"], own["port"] = "", ""
	case "syslog":
		out["protocol"] = "tcp"
		if strings.Contains(ft, "udp") {
			out["protocol"] = "udp"
		}
		own = rename{"eventSize": "max_line_bytes"}
		hostPort(where, in, out, "host", "port", fail)
		own["host"], own["port"] = "", ""
	case "http":
		if v, ok := in["handler"]; ok && v != "org.apache.flume.source.http.JSONHandler" {
			fail(where+".handler", "only org.apache.flume.source.http.JSONHandler is supported, not %q", v)
		}
		own = rename{"handler": ""}
		hostPort(where, in, out, "bind", "port", fail)
		own["bind"], own["port"] = "", ""
	}
	for k, v := range own {
		common[k] = v
	}
	// Interceptors are converted on their own.
	ics := map[string]map[string]string{}
	for _, n := range strings.Fields(in["interceptors"]) {
		ics[n] = map[string]string{}
	}
	rest := map[string]string{}
	for k, v := range in {
		if strings.HasPrefix(k, "interceptors.") {
			p := strings.SplitN(strings.TrimPrefix(k, "interceptors."), ".", 2)
			if m, ok := ics[p[0]]; ok && len(p) == 2 {
				m[p[1]] = v
				continue
			}
			fail(where+"."+k, "interceptor %q is not declared in %s.interceptors", p[0], where)
			continue
		}
		rest[k] = v
	}
	apply(where, rest, out, common, prefixes, fail)
	for n, m := range ics {
		convertInterceptor(where+".interceptors."+n, m, out, "interceptors."+n+".", fail)
	}
	return out
}

// kafkaSource maps a KafkaSource's keys. Flume's consumer settings are kafka.consumer.*;
// the few that have a tagpipe key are mapped, the rest refused by name. The deprecated
// topic and groupId are taken when their kafka.* successors are not set, as Flume does.
func kafkaSource(where string, in, out map[string]string, fail failFn) rename {
	own := rename{"kafka.bootstrap.servers": "brokers", "kafka.topics": "topics", "kafka.topics.regex": "topics_regex",
		"kafka.consumer.group.id": "group_id", "batchSize": "batch_size", "batchDurationMillis": "batch_duration",
		"setTopicHeader": "set_topic_header", "topicHeader": "topic_header",
		"kafka.consumer.auto.offset.reset":         "auto_offset_reset",
		"kafka.consumer.session.timeout.ms":        "session_timeout",
		"kafka.consumer.heartbeat.interval.ms":     "heartbeat_interval",
		"kafka.consumer.fetch.max.wait.ms":         "max_wait",
		"kafka.consumer.max.partition.fetch.bytes": "max_fetch_bytes",
		"kafka.consumer.metadata.max.age.ms":       "topic_refresh",
		// No-ops: the reader waits in the broker's fetch instead of sleeping on an empty
		// topic; there are no ZooKeeper offsets to migrate; offsets are always committed
		// by the source after the put (Flume forces auto-commit off too).
		"backoffSleepIncrement": "", "maxBackoffSleep": "", "migrateZookeeperOffsets": "",
		"kafka.consumer.enable.auto.commit": "", "useFlumeEventFormat": "", "zookeeperConnect": "",
		"topic": "", "groupId": ""}
	if in["kafka.bootstrap.servers"] == "" {
		if in["zookeeperConnect"] != "" {
			fail(where+".zookeeperConnect", "finding brokers through ZooKeeper is not supported; set kafka.bootstrap.servers")
		} else {
			fail(where+".kafka.bootstrap.servers", "is required")
		}
	}
	switch {
	case in["kafka.topics.regex"] != "":
		own["kafka.topics"] = "" // the regex wins, as in Flume
	case in["kafka.topics"] == "" && in["topic"] != "":
		own["topic"] = "topics"
	case in["kafka.topics"] == "":
		fail(where+".kafka.topics", "is required (or kafka.topics.regex)")
	}
	if in["kafka.consumer.group.id"] == "" && in["groupId"] != "" {
		own["groupId"] = "group_id"
	}
	if v, ok := in["useFlumeEventFormat"]; ok && lower(v) != "false" {
		fail(where+".useFlumeEventFormat", "the Avro Flume event format is not supported; record headers become event headers")
	}
	if v, ok := in["kafka.consumer.auto.offset.reset"]; ok && lower(v) != "latest" && lower(v) != "earliest" {
		fail(where+".kafka.consumer.auto.offset.reset", "want latest or earliest, not %q", v)
	}
	kafkaSecurity(where, "kafka.consumer.", in, out, own, fail)
	return own
}

// kafkaSecurity maps the Kafka client security properties below prefix
// (kafka.producer.security.protocol, kafka.consumer.sasl.jaas.config, …) to the
// component's security keys, and marks them used in names. Problems name the Flume key:
// an unsupported mechanism or login module, a JKS store (convert it to PEM). Without
// any, the collector's kafka: settings apply.
func kafkaSecurity(where, prefix string, in, out map[string]string, names rename, fail failFn) {
	props := map[string]string{}
	for k, v := range in {
		if name, ok := strings.CutPrefix(k, prefix); ok && kafkasec.IsSecurityProperty(name) {
			props[name] = v
			names[k] = ""
		}
	}
	if len(props) == 0 {
		return
	}
	c, problems := kafkasec.FromProperties(props)
	for _, p := range problems {
		fail(where+"."+prefix+p.Key, "%s", p.Reason)
	}
	for _, k := range kafkasec.Keys {
		if v := c.Get(k); v != "" {
			out[k] = v
		}
	}
}

func hostPort(where string, in, out map[string]string, hostKey, portKey string, fail failFn) {
	host, port := in[hostKey], in[portKey]
	if port == "" {
		fail(where+"."+portKey, "is required")
		return
	}
	if host == "" {
		host = "0.0.0.0"
	}
	out["listen"] = host + ":" + port
}

var interceptorTypes = map[string]string{
	"timestamp": "timestamp", "org.apache.flume.interceptor.timestampinterceptor$builder": "timestamp",
	"host": "host", "org.apache.flume.interceptor.hostinterceptor$builder": "host",
	"static": "static", "org.apache.flume.interceptor.staticinterceptor$builder": "static",
	"regex_filter": "regex_filter", "org.apache.flume.interceptor.regexfilteringinterceptor$builder": "regex_filter",
	"regex_extractor": "regex_extractor", "org.apache.flume.interceptor.regexextractorinterceptor$builder": "regex_extractor",
	"search_replace": "search_replace", "org.apache.flume.interceptor.searchandreplaceinterceptor$builder": "search_replace",
	"remove_header": "remove_header", "org.apache.flume.interceptor.removeheaderinterceptor$builder": "remove_header",
	"org.apache.flume.sink.solr.morphline.uuidinterceptor$builder": "uuid",
}

func convertInterceptor(where string, in map[string]string, out map[string]string, prefix string, fail failFn) {
	typ, ok := interceptorTypes[lower(in["type"])]
	if !ok {
		fail(where+".type", "unsupported interceptor type %q", in["type"])
		return
	}
	m := map[string]string{"type": typ}
	names := rename{"type": ""}
	prefixes := rename{}
	switch typ {
	case "timestamp":
		names["preserveExisting"], names["headerName"] = "preserve_existing", "header"
	case "host":
		names["preserveExisting"], names["hostHeader"], names["useIP"] = "preserve_existing", "header", "use_ip"
	case "static":
		names["preserveExisting"], names["key"], names["value"] = "preserve_existing", "key", "value"
	case "regex_filter":
		names["regex"], names["excludeEvents"] = "regex", "exclude_events"
	case "search_replace":
		names["searchPattern"], names["replaceString"] = "search_pattern", "replace_string"
		if cs, ok := in["charset"]; ok && !strings.EqualFold(cs, "UTF-8") {
			fail(where+".charset", "only UTF-8 is supported, not %q", cs)
		}
		names["charset"] = ""
	case "remove_header":
		names["withName"], names["fromList"], names["matching"] = "with_name", "from_list", "matching"
		if sep, ok := in["fromListSeparator"]; ok && sep != `\s*,\s*` && sep != "," {
			fail(where+".fromListSeparator", "only the default separator (a comma) is supported, not %q", sep)
		}
		names["fromListSeparator"] = ""
	case "regex_extractor":
		names["regex"], names["serializers"] = "regex", "serializers"
		for _, s := range strings.Fields(in["serializers"]) {
			names["serializers."+s+".name"] = "serializers." + s + ".name"
			if t, ok := in["serializers."+s+".type"]; ok {
				fail(where+".serializers."+s+".type", "only the default serializer is supported, not %q", t)
				names["serializers."+s+".type"] = ""
			}
		}
	case "uuid":
		names["headerName"], names["preserveExisting"] = "header", "preserve_existing"
		names["prefix"] = ""
		if v := in["prefix"]; v != "" {
			fail(where+".prefix", "UUID prefixes are not supported")
		}
	}
	apply(where, in, m, names, prefixes, fail)
	for k, v := range m {
		out[prefix+k] = v
	}
}

func convertChannel(where string, in map[string]string, fail failFn) map[string]string {
	out := map[string]string{}
	switch t := lower(in["type"]); t {
	case "memory", "org.apache.flume.channel.memorychannel":
		out["type"] = "memory"
		apply(where, in, out, rename{"type": "", "capacity": "capacity", "transactionCapacity": "transaction_capacity",
			"byteCapacity": "capacity_bytes", "byteCapacityBufferPercentage": "", "keep-alive": ""}, nil, fail)
	case "file", "org.apache.flume.channel.file.filechannel":
		out["type"] = "file"
		if dirs := strings.Split(in["dataDirs"], ","); in["dataDirs"] != "" {
			if len(dirs) > 1 {
				fail(where+".dataDirs", "one data directory only, got %d", len(dirs))
			}
			out["dir"] = strings.TrimSpace(dirs[0])
		}
		// The checkpoint lives beside the log in dataDirs; checkpointDir is accepted and
		// not used.
		apply(where, in, out, rename{"type": "", "dataDirs": "", "checkpointDir": "", "capacity": "capacity",
			"transactionCapacity": "transaction_capacity", "maxFileSize": "max_file_bytes",
			"minimumRequiredSpace": "min_free_bytes", "checkpointInterval": "checkpoint_interval",
			"keep-alive": "", "useDualCheckpoints": "", "backupCheckpointDir": ""}, nil, fail)
	default:
		fail(where+".type", "unsupported channel type %q (supported: memory, file)", in["type"])
	}
	return out
}

func convertSink(where string, in map[string]string, fail failFn) map[string]string {
	out := map[string]string{}
	common := rename{"type": "", "channel": "channel"}
	switch t := lower(in["type"]); t {
	case "org.apache.flume.sink.kafka.kafkasink", "kafka":
		out["type"] = "kafka"
		// Any acks Kafka knows is taken: tagpipe always produces with acks=all, which
		// loses nothing a weaker setting would keep (Flume's own example says acks = 1).
		for _, k := range []string{"kafka.producer.acks", "requiredAcks"} {
			if v, ok := in[k]; ok && v != "-1" && v != "0" && v != "1" && lower(v) != "all" {
				fail(where+"."+k, "want -1, all, 1 or 0, not %q (tagpipe always produces with acks=all)", v)
			}
		}
		if v, ok := in["useFlumeEventFormat"]; ok && lower(v) == "true" {
			fail(where+".useFlumeEventFormat", "the Avro Flume event format is not supported; headers become Kafka record headers")
		}
		if v, ok := in["topicHeader"]; ok && v != "topic" {
			fail(where+".topicHeader", "the topic header is always \"topic\"")
		}
		if v, ok := in["allowTopicOverride"]; ok && lower(v) != "true" {
			fail(where+".allowTopicOverride", "the topic header always overrides the topic")
		}
		kafkaKeys := rename{"kafka.bootstrap.servers": "brokers", "kafka.topic": "topic", "flumeBatchSize": "batch_size",
			"kafka.producer.linger.ms": "linger", "kafka.producer.compression.type": "compression",
			"kafka.producer.max.request.size": "batch_bytes", "kafka.producer.acks": "", "useFlumeEventFormat": "",
			"topicHeader": "", "allowTopicOverride": "",
			// Flume 1.6's names, still read by later Flumes when their successors are unset
			// (KafkaSink.translateOldProps), and kafka.flumeBatchSize, as the Flume user
			// guide's KafkaSink example spells flumeBatchSize.
			"topic": "", "brokerList": "", "batchSize": "", "requiredAcks": "", "kafka.flumeBatchSize": ""}
		taken := map[string]bool{}
		for _, alias := range [][2]string{{"topic", "kafka.topic"}, {"brokerList", "kafka.bootstrap.servers"},
			{"batchSize", "flumeBatchSize"}, {"kafka.flumeBatchSize", "flumeBatchSize"}} {
			old, now := alias[0], alias[1]
			if _, set := in[now]; !set && !taken[now] && in[old] != "" {
				kafkaKeys[old] = kafkaKeys[now]
				taken[now] = true // the first alias wins: batchSize before kafka.flumeBatchSize
			}
		}
		for k, v := range kafkaKeys {
			common[k] = v
		}
		kafkaSecurity(where, "kafka.producer.", in, out, common, fail)
	case "logger":
		out["type"] = "logger"
		common["maxBytesToLog"] = "max_bytes"
	case "file_roll":
		out["type"] = "file_roll"
		common["sink.directory"], common["sink.rollInterval"], common["batchSize"] = "dir", "roll_interval", "batch_size"
	default:
		fail(where+".type", "unsupported sink type %q (supported: org.apache.flume.sink.kafka.KafkaSink, logger, file_roll)", in["type"])
		return out
	}
	apply(where, in, out, common, nil, fail)
	return out
}

func convertGroup(where string, in map[string]string, fail failFn) map[string]string {
	out := map[string]string{}
	if t := lower(in["processor.type"]); t != "" && t != "failover" && t != "load_balance" && t != "default" {
		fail(where+".processor.type", "unsupported sink processor %q (supported: failover, load_balance, default)", in["processor.type"])
	}
	apply(where, in, out, rename{"sinks": "sinks", "processor.type": "processor.type", "processor.maxpenalty": "processor.max_penalty",
		"processor.selector": "processor.selector", "processor.backoff": "processor.backoff",
		"processor.selector.maxTimeOut": "processor.selector.max_timeout"},
		rename{"processor.priority.": "processor.priority."}, fail)
	for _, k := range []string{"processor.type", "processor.selector"} {
		if t, ok := out[k]; ok {
			out[k] = lower(t)
		}
	}
	return out
}
