package config

import "time"

// The sections below start small; each room grows its own section as its code lands.
// Paths left empty default to a folder below data_dir (see DataPath).

// Streaming: see streaming.go.

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
