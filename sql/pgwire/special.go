package pgwire

import (
	"errors"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// Statements PostgreSQL clients send that are about the session, not the data. They are
// answered here, as PostgreSQL would, because the engine is read-only and shared:
// transaction control is a no-op (every query reads one snapshot anyway), client settings
// are remembered per connection, SHOW reports them.

type specialKind int

const (
	spEmpty specialKind = iota + 1
	spTag               // answer CommandComplete with tag
	spSet
	spShow
	spVersion
)

type special struct {
	kind  specialKind
	tag   string
	name  string
	value string
}

// clientSettings are the SET parameters accepted (and remembered) per connection.
var clientSettings = map[string]string{
	"application_name": "", "client_encoding": "UTF8", "datestyle": "ISO, MDY", "extra_float_digits": "1",
	"intervalstyle": "postgres", "timezone": "UTC", "search_path": `"$user", public`, "statement_timeout": "0",
	"client_min_messages": "notice", "bytea_output": "hex", "lc_messages": "C", "standard_conforming_strings": "on",
	"default_transaction_isolation": "read committed", "lock_timeout": "0", "idle_in_transaction_session_timeout": "0",
	"jit": "off", "geqo": "on", "row_security": "on", "names": "UTF8",
}

// serverSettings are read-only parameters SHOW answers.
var serverSettings = map[string]string{
	"server_encoding": "UTF8", "transaction_isolation": "serializable", "transaction_read_only": "on",
	"default_transaction_read_only": "on", "max_identifier_length": "63", "integer_datetimes": "on",
	"is_superuser": "off", "lc_collate": "C", "lc_ctype": "C",
}

var (
	beginRE    = regexp.MustCompile(`(?is)^\s*(begin|start\s+transaction)\b`)
	commitRE   = regexp.MustCompile(`(?is)^\s*(commit|end)\b`)
	rollbackRE = regexp.MustCompile(`(?is)^\s*(rollback|abort)\b`)
	setRE      = regexp.MustCompile(`(?is)^\s*set\s+(?:session\s+|local\s+)?([a-z_.]+)\s*(?:=|\s+to\s+|\s+)\s*(.*?)\s*;?\s*$`)
	setTxRE    = regexp.MustCompile(`(?is)^\s*set\s+(session\s+characteristics\s+as\s+)?transaction\b`)
	resetRE    = regexp.MustCompile(`(?is)^\s*reset\s+([a-z_.]+)\s*;?\s*$`)
	showRE     = regexp.MustCompile(`(?is)^\s*show\s+([a-z_.]+)\s*;?\s*$`)
	versionRE  = regexp.MustCompile(`(?is)^\s*select\s+(pg_catalog\.)?version\(\)\s*;?\s*$`)
	discardRE  = regexp.MustCompile(`(?is)^\s*(discard\s+all|deallocate\b|close\s+all)`)
)

// classify recognises a session statement; nil means the engine runs it.
func classify(q string) *special {
	switch {
	case strings.TrimSpace(strings.TrimRight(strings.TrimSpace(q), ";")) == "":
		return &special{kind: spEmpty}
	case beginRE.MatchString(q):
		return &special{kind: spTag, tag: "BEGIN"}
	case commitRE.MatchString(q):
		return &special{kind: spTag, tag: "COMMIT"}
	case rollbackRE.MatchString(q):
		return &special{kind: spTag, tag: "ROLLBACK"}
	case setTxRE.MatchString(q):
		return &special{kind: spTag, tag: "SET"}
	case versionRE.MatchString(q):
		// Clients parse "PostgreSQL X.Y" out of version(); DuckDB's own says "v1.5.6".
		return &special{kind: spVersion}
	case discardRE.MatchString(q):
		return &special{kind: spTag, tag: strings.ToUpper(strings.Fields(q)[0])}
	}
	if m := setRE.FindStringSubmatch(q); m != nil {
		name := strings.ToLower(m[1])
		if _, ok := clientSettings[name]; ok {
			return &special{kind: spSet, name: name, value: strings.Trim(m[2], `'"`)}
		}
		return nil // the engine refuses it with its own message
	}
	if m := resetRE.FindStringSubmatch(q); m != nil {
		name := strings.ToLower(m[1])
		if _, ok := clientSettings[name]; ok || name == "all" {
			return &special{kind: spSet, name: name, value: clientSettings[name], tag: "RESET"}
		}
		return nil
	}
	if m := showRE.FindStringSubmatch(q); m != nil {
		name := strings.ToLower(m[1])
		_, c := clientSettings[name]
		_, s := serverSettings[name]
		if c || s || name == "server_version" || name == "all" {
			return &special{kind: spShow, name: name}
		}
	}
	return nil
}

func (sp *special) columns() []tsql.Column {
	switch sp.kind {
	case spShow:
		return []tsql.Column{{Name: sp.name, Type: "VARCHAR"}}
	case spVersion:
		return []tsql.Column{{Name: "version", Type: "VARCHAR"}}
	}
	return nil
}

func (c *conn) setting(name string) string {
	if v, ok := c.params[name]; ok {
		return v
	}
	if name == "server_version" {
		return c.srv.opts.ServerVersion
	}
	if v, ok := serverSettings[name]; ok {
		return v
	}
	return clientSettings[name]
}

func (c *conn) runSpecial(sp *special, formats []int16, describe bool) error {
	switch sp.kind {
	case spEmpty:
		c.be.Send(&pgproto3.EmptyQueryResponse{})
	case spTag:
		switch sp.tag {
		case "BEGIN":
			c.inTx = true
		case "COMMIT", "ROLLBACK":
			c.inTx = false
		}
		c.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(sp.tag)})
	case spSet:
		if sp.name == "all" {
			c.params = map[string]string{}
		} else {
			c.params[sp.name] = sp.value
		}
		if sp.name == "application_name" {
			c.be.Send(&pgproto3.ParameterStatus{Name: sp.name, Value: sp.value})
		}
		tag := "SET"
		if sp.tag != "" {
			tag = sp.tag
		}
		c.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
	case spVersion:
		v := "PostgreSQL " + c.srv.opts.ServerVersion + " (tagpipe; DuckDB " + c.srv.duckVersion() + ")"
		return c.sendResultSet(&resultSet{cols: sp.columns(), rows: [][]any{{v}}}, formats, describe)
	case spShow:
		if sp.name == "all" {
			return errors.New("SHOW ALL is not supported; SHOW one parameter")
		}
		return c.sendResultSet(&resultSet{cols: sp.columns(), rows: [][]any{{c.setting(sp.name)}}, tag: "SHOW"}, formats, describe)
	}
	return nil
}
