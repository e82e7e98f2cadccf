package agent

// DefaultSpec is the agent tagpipe runs when the config names none: spooldir at spoolDir
// → file channel (data_dir/ingest/default/events) → kafka sink to topic, with the record
// key set to the user id (found by the canonical "auto" parser: jsonl, taobao,
// movielens), the file path in the "file" record header and bad lines sent to deadLetter when it is set.
func DefaultSpec(spoolDir, topic, deadLetter string) Spec {
	sink := map[string]string{"type": "kafka", "channel": "events", "topic": topic}
	if deadLetter != "" {
		sink["dead_letter_topic"] = deadLetter
	}
	return Spec{
		Name:  "default",
		Where: "ingest.agents.default",
		Sources: map[string]map[string]string{"spool": {
			"type": "spooldir", "dir": spoolDir, "channels": "events", "file_header": "true", "basename_header": "true",
			"interceptors": "user ts", "interceptors.user.type": "user_key", "interceptors.user.format": "auto",
			"interceptors.ts.type": "timestamp", "interceptors.ts.header": "ingest_time",
		}},
		Channels: map[string]map[string]string{"events": {"type": "file"}},
		Sinks:    map[string]map[string]string{"kafka": sink},
	}
}
