package config

// The sections below start small; each room grows its own section as its code lands.
// Paths left empty default to a folder below data_dir (see DataPath).

// Streaming: see streaming.go.

// Warehouse: see warehouse.go.

// Jobs: see jobs.go.
