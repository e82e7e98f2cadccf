package agent

const crashChildEnv = "TAGPIPE_INGEST_CRASH_CHILD"
