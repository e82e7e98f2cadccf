package config

import "time"

// The sections below start small; each room grows its own section as its code lands.
// Paths left empty default to a folder below data_dir (see DataPath).

// Streaming configures the micro-batch engine and its built-in pipelines.
type Streaming struct {
	Enabled bool `yaml:"enabled"`
	// BootstrapServers: empty means the built-in broker.
	BootstrapServers []string      `yaml:"bootstrap_servers"`
	BatchInterval    time.Duration `yaml:"batch_interval"`
	// MaxRecordsPerPartition caps one batch's offset range per partition.
	MaxRecordsPerPartition int64 `yaml:"max_records_per_partition"`
}

func (s *Streaming) validate(ch *check) {
	ch.positive("batch_interval", int64(s.BatchInterval))
	ch.positive("max_records_per_partition", s.MaxRecordsPerPartition)
}

// Warehouse: see warehouse.go.

// Jobs configures the scheduler.
type Jobs struct {
	Enabled bool `yaml:"enabled"`
	// Timezone is the default zone of cron schedules (IANA name).
	Timezone string `yaml:"timezone"`
}

func (j *Jobs) validate(ch *check) {
	if _, err := time.LoadLocation(j.Timezone); err != nil {
		ch.fail("timezone", "unknown time zone %q", j.Timezone)
	}
}
