package config

import (
	"regexp"
	"time"
)

// SQL configures the DuckDB endpoints: the PostgreSQL wire listener, the HTTP /v1/query
// handler (on the admin listener) and the limits every remote query runs under.
type SQL struct {
	// PGListen is the PostgreSQL wire listener; empty disables it.
	PGListen string `yaml:"pg_listen"`
	// User is the user name PostgreSQL clients log in as.
	User string `yaml:"user"`
	// Password, when set, is required from PostgreSQL clients (SCRAM-SHA-256 by default)
	// and from HTTP clients (basic auth); empty means trust (listeners are on 127.0.0.1).
	Password string `yaml:"password"`
	// PasswordAuth is scram-sha-256 or md5.
	PasswordAuth string `yaml:"password_auth"`
	// TLSCert and TLSKey (PEM files) enable TLS on the PostgreSQL listener (sslmode=require).
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// QueryTimeout bounds one remote query.
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// MaxRows bounds one remote result; longer results are cut and flagged.
	MaxRows int64 `yaml:"max_rows"`
	// MemoryLimit is DuckDB's memory_limit ("2GB"); empty keeps DuckDB's default (80% of RAM).
	MemoryLimit string `yaml:"memory_limit"`
	// Threads is DuckDB's worker thread count; 0 keeps DuckDB's default (all cores).
	Threads int `yaml:"threads"`
	// RefreshInterval is how often the servers move their table views to the newest
	// warehouse snapshots.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// CacheTables ("table.key") are held in memory by the servers, indexed on key, so a
	// point query (one user's tags) costs an index lookup instead of a Parquet scan. The
	// copy follows the newest snapshot; it counts against memory_limit.
	CacheTables []string `yaml:"cache_tables"`
}

var cacheTableRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$`)

var memoryLimitRE = regexp.MustCompile(`^(?i)\d+(\.\d+)?\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)$|^\d+(\.\d+)?%$`)

func (s *SQL) validate(ch *check) {
	ch.addr("pg_listen", s.PGListen)
	if s.User == "" {
		ch.fail("user", "must not be empty")
	}
	ch.oneOf("password_auth", s.PasswordAuth, "scram-sha-256", "md5")
	if (s.TLSCert == "") != (s.TLSKey == "") {
		ch.fail("tls_cert", "tls_cert and tls_key must be set together")
	}
	ch.positive("query_timeout", int64(s.QueryTimeout))
	ch.positive("max_rows", s.MaxRows)
	if s.MemoryLimit != "" && !memoryLimitRE.MatchString(s.MemoryLimit) {
		ch.fail("memory_limit", "want a size like 2GB or 512MiB, got %q", s.MemoryLimit)
	}
	ch.positive("refresh_interval", int64(s.RefreshInterval))
	if s.Threads < 0 {
		ch.fail("threads", "must be >= 0, got %d", s.Threads)
	}
	for _, t := range s.CacheTables {
		if !cacheTableRE.MatchString(t) {
			ch.fail("cache_tables", "want table.key_column, got %q", t)
		}
	}
}
