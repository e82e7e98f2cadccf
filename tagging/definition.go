package tagging

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/robfig/cron/v3"
)

// Definition is one tag defined by SQL beyond the model, loaded from a YAML file:
//
//	name: activity
//	description: How active the user was in the 30 days up to ds
//	owner: growth
//	type: rule                 # rule | statistic | model
//	schedule: "30 2 * * *"     # cron (or @daily); jobs registers it
//	sql: |
//	  SELECT user_id, CASE … END AS value, n AS weight FROM …
//
// The SQL returns one row per user with columns user_id and value, and optionally
// weight. It is a Go text/template with Airflow-style macros: {{ ds }}, {{ next_ds }},
// {{ prev_ds }}, {{ ds_nodash }}, {{ ds_add -29 }} (days from ds), {{ half_life }}.
type Definition struct {
	Kind        string `yaml:"kind"` // "tag" (default) or "audience"
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Owner       string `yaml:"owner"`
	Type        string `yaml:"type"`
	Schedule    string `yaml:"schedule"`
	SQL         string `yaml:"sql"`
	// File is where it was loaded from.
	File string `yaml:"-"`
}

// Audience is a named boolean expression over tags (see ParseExpression), loaded from a
// YAML file with kind: audience.
type Audience struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Owner       string `yaml:"owner"`
	Schedule    string `yaml:"schedule"`
	Expression  string `yaml:"expression"`
	File        string `yaml:"-"`
}

var tagName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Validate checks the fields that can be checked without running the SQL.
func (d *Definition) Validate() error {
	if !tagName.MatchString(d.Name) {
		return fmt.Errorf("name %q: want lower-case letters, digits and _, starting with a letter", d.Name)
	}
	switch d.Type {
	case "rule", "statistic", "model":
	default:
		return fmt.Errorf("tag %q: type must be rule, statistic or model, got %q", d.Name, d.Type)
	}
	if strings.TrimSpace(d.SQL) == "" {
		return fmt.Errorf("tag %q: sql is empty", d.Name)
	}
	if d.Schedule != "" {
		if _, err := cron.ParseStandard(d.Schedule); err != nil {
			return fmt.Errorf("tag %q: bad schedule %q: %w", d.Name, d.Schedule, err)
		}
	}
	if _, err := d.Render("2000-01-01", 30); err != nil {
		return err
	}
	return nil
}

// Render expands the SQL's macros for ds.
func (d *Definition) Render(ds string, halfLife float64) (string, error) {
	day, err := ParseDS(ds)
	if err != nil {
		return "", err
	}
	f := func(t time.Time) string { return t.Format("2006-01-02") }
	funcs := template.FuncMap{
		"ds":        func() string { return f(day) },
		"next_ds":   func() string { return f(day.AddDate(0, 0, 1)) },
		"prev_ds":   func() string { return f(day.AddDate(0, 0, -1)) },
		"ds_nodash": func() string { return day.Format("20060102") },
		"ds_add":    func(n int) string { return f(day.AddDate(0, 0, n)) },
		"half_life": func() float64 { return halfLife },
	}
	tpl, err := template.New(d.Name).Funcs(funcs).Option("missingkey=error").Parse(d.SQL)
	if err != nil {
		return "", fmt.Errorf("tag %q: bad template in sql: %w", d.Name, err)
	}
	var b bytes.Buffer
	if err := tpl.Execute(&b, nil); err != nil {
		return "", fmt.Errorf("tag %q: cannot expand sql: %w", d.Name, err)
	}
	return strings.TrimRight(strings.TrimSpace(b.String()), ";"), nil
}

// LoadDefinitions reads every *.yaml / *.yml file of dir: tag definitions and audiences.
// A bad file does not stop the others: the good ones are returned together with an
// error naming each bad file.
func LoadDefinitions(dir string) ([]*Definition, []*Audience, error) {
	var files []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, nil, fmt.Errorf("cannot list definitions in %q: %w", dir, err)
		}
		files = append(files, m...)
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, nil, fmt.Errorf("cannot read definitions dir: %w", err)
	}
	sort.Strings(files)
	var defs []*Definition
	var auds []*Audience
	var errs []error
	seen := map[string]string{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot read %s: %w", file, err))
			continue
		}
		var head struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		}
		if err := yaml.Unmarshal(data, &head); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
			continue
		}
		if prev, ok := seen[head.Name]; ok {
			errs = append(errs, fmt.Errorf("%s: name %q is already defined in %s", file, head.Name, prev))
			continue
		}
		switch head.Kind {
		case "", "tag":
			d := &Definition{}
			if err := yaml.UnmarshalWithOptions(data, d, yaml.DisallowUnknownField()); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", file, err))
				continue
			}
			d.File = file
			if err := d.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", file, err))
				continue
			}
			defs = append(defs, d)
		case "audience":
			a := &Audience{}
			var raw struct {
				Audience `yaml:",inline"`
				Kind     string `yaml:"kind"`
			}
			if err := yaml.UnmarshalWithOptions(data, &raw, yaml.DisallowUnknownField()); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", file, err))
				continue
			}
			*a = raw.Audience
			a.File = file
			if err := a.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", file, err))
				continue
			}
			auds = append(auds, a)
		default:
			errs = append(errs, fmt.Errorf("%s: kind must be tag or audience, got %q", file, head.Kind))
			continue
		}
		seen[head.Name] = file
	}
	return defs, auds, errors.Join(errs...)
}

// DefinitionResult is one definition's run.
type DefinitionResult struct {
	Name  string
	DS    string
	Rows  int64
	Reads []string // lineage: tables the SQL reads
	Err   error
	Took  time.Duration
}

// RunDefinition runs one definition for ds into ads_user_tags (partition dt × tag). An
// error names the tag and carries DuckDB's message; nothing is written then.
func (t *Tagger) RunDefinition(ctx context.Context, def *Definition, ds string) (*DefinitionResult, error) {
	start := time.Now()
	res := &DefinitionResult{Name: def.Name, DS: ds}
	fail := func(err error) (*DefinitionResult, error) {
		res.Err = err
		res.Took = time.Since(start)
		t.recordRun(ctx, def, res)
		return res, err
	}
	q, err := def.Render(ds, t.opts.HalfLifeDays)
	if err != nil {
		return fail(err)
	}
	c, err := t.conn(ctx)
	if err != nil {
		return fail(fmt.Errorf("tag %q: %w", def.Name, err))
	}
	defer c.Close()
	if res.Reads, err = lineage(ctx, c, q); err != nil {
		return fail(fmt.Errorf("tag %q: %w", def.Name, err))
	}
	cols, err := resultColumns(ctx, c, q)
	if err != nil {
		return fail(fmt.Errorf("tag %q: %w", def.Name, err))
	}
	for _, need := range []string{"user_id", "value"} {
		if !cols[need] {
			return fail(fmt.Errorf("tag %q: the sql returns no column %q (it must return user_id, value[, weight])", def.Name, need))
		}
	}
	weight := "CAST(NULL AS DOUBLE)"
	if cols["weight"] {
		weight = "CAST(weight AS DOUBLE)"
	}
	out := fmt.Sprintf(`SELECT %s AS dt, %s AS tag, CAST(user_id AS VARCHAR) AS user_id, CAST(value AS VARCHAR) AS value, %s AS weight
FROM (%s) WHERE user_id IS NOT NULL`, dateLit(mustDay(ds)), lit(def.Name), weight, q)
	var dupUser sql.NullString
	var dupN int64
	err = c.QueryRowContext(ctx, fmt.Sprintf("SELECT user_id, count(*) FROM (%s) GROUP BY user_id HAVING count(*) > 1 ORDER BY user_id LIMIT 1", out)).Scan(&dupUser, &dupN)
	switch {
	case err == nil:
		return fail(fmt.Errorf("tag %q: the sql returns %d rows for user %q: want at most one row per user", def.Name, dupN, dupUser.String))
	case !errors.Is(err, sql.ErrNoRows):
		return fail(fmt.Errorf("tag %q: %w", def.Name, err))
	}
	if err := t.store.Replace(ctx, c, TableDefTags, []KV{{"dt", ds}, {"tag", def.Name}}, out); err != nil {
		return fail(fmt.Errorf("tag %q: %w", def.Name, err))
	}
	q = fmt.Sprintf("SELECT count(*) FROM %s WHERE dt = %s AND tag = %s", TableDefTags, dateLit(mustDay(ds)), lit(def.Name))
	if err := c.QueryRowContext(ctx, q).Scan(&res.Rows); err != nil {
		return fail(fmt.Errorf("tag %q: %w", def.Name, err))
	}
	res.Took = time.Since(start)
	t.recordRun(ctx, def, res)
	t.log.Info("tag definition run", "tag", def.Name, "ds", ds, "rows", res.Rows, "took", res.Took)
	return res, nil
}

// RunDefinitions runs every definition for ds; one failing does not stop the others.
// The returned error joins the failures.
func (t *Tagger) RunDefinitions(ctx context.Context, defs []*Definition, ds string) ([]*DefinitionResult, error) {
	var out []*DefinitionResult
	var errs []error
	for _, d := range defs {
		r, err := t.RunDefinition(ctx, d, ds)
		out = append(out, r)
		if err != nil {
			t.log.Error("tag definition failed", "tag", d.Name, "ds", ds, "err", err)
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

func mustDay(ds string) time.Time {
	d, err := ParseDS(ds)
	if err != nil {
		panic("BUG: ds checked by Render: " + err.Error())
	}
	return d
}

// resultColumns binds the query without running it and returns its column names.
func resultColumns(ctx context.Context, c *sql.Conn, q string) (map[string]bool, error) {
	rows, err := c.QueryContext(ctx, "SELECT * FROM ("+q+") LIMIT 0")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	cols := map[string]bool{}
	for _, n := range names {
		cols[strings.ToLower(n)] = true
	}
	return cols, nil
}

// lineage lists the tables a query reads, from DuckDB's own parse tree
// (json_serialize_sql), without CTE names.
func lineage(ctx context.Context, c *sql.Conn, q string) ([]string, error) {
	var doc string
	if err := c.QueryRowContext(ctx, "SELECT CAST(json_serialize_sql("+lit(q)+") AS VARCHAR)").Scan(&doc); err != nil {
		return nil, err
	}
	var tree any
	if err := json.Unmarshal([]byte(doc), &tree); err != nil {
		return nil, fmt.Errorf("cannot read the parse tree: %w", err)
	}
	if m, ok := tree.(map[string]any); ok && m["error"] == true {
		kind := fmt.Sprint(m["error_type"])
		if kind != "" {
			kind = strings.ToUpper(kind[:1]) + kind[1:]
		}
		return nil, fmt.Errorf("%s Error: %v (at character %v of the sql)", kind, m["error_message"], m["position"])
	}
	tables, ctes := map[string]bool{}, map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["type"] == "BASE_TABLE" {
				if n, ok := v["table_name"].(string); ok && n != "" {
					tables[n] = true
				}
			}
			if cm, ok := v["cte_map"].(map[string]any); ok {
				if list, ok := cm["map"].([]any); ok {
					for _, e := range list {
						if em, ok := e.(map[string]any); ok {
							if k, ok := em["key"].(string); ok {
								ctes[k] = true
							}
						}
					}
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(tree)
	var out []string
	for n := range tables {
		if !ctes[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}
