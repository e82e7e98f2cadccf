package jobs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad definitions are refused at load, each error naming the job and the field.
func TestCompileRefusesBadDefinitions(t *testing.T) {
	k := NewKinds()
	cases := []struct {
		name string
		defs []Def
		want []string
	}{
		{"unknown depends_on", []Def{{Name: "tags", Schedule: "@daily", DependsOn: []string{"nope"}, Task: TaskSpec{Kind: "shell", Command: "true"}}},
			[]string{`job "tags": depends_on: unknown job "nope"`}},
		{"bad cron", []Def{{Name: "tags", Schedule: "61 * * * *", Task: TaskSpec{Kind: "shell", Command: "true"}}},
			[]string{`job "tags": schedule: bad cron spec "61 * * * *"`}},
		{"bad descriptor", []Def{{Name: "x", Schedule: "@sometimes", Task: TaskSpec{Kind: "shell", Command: "true"}}},
			[]string{`job "x": schedule: bad cron spec "@sometimes"`}},
		{"never fires", []Def{{Name: "x", Schedule: "0 0 30 2 *", Task: TaskSpec{Kind: "shell", Command: "true"}}},
			[]string{`job "x": schedule: bad cron spec "0 0 30 2 *": never fires`}},
		{"cycle", []Def{
			{Name: "a", Schedule: "@daily", DependsOn: []string{"c"}, Task: TaskSpec{Kind: "shell", Command: "true"}},
			{Name: "b", Schedule: "@daily", DependsOn: []string{"a"}, Task: TaskSpec{Kind: "shell", Command: "true"}},
			{Name: "c", Schedule: "@daily", DependsOn: []string{"b"}, Task: TaskSpec{Kind: "shell", Command: "true"}},
			{Name: "ok", Schedule: "@daily", Task: TaskSpec{Kind: "shell", Command: "true"}},
		}, []string{`job "a": depends_on: cycle: a -> c -> b -> a`}},
		{"self cycle", []Def{{Name: "a", Schedule: "@daily", DependsOn: []string{"a"}, Task: TaskSpec{Kind: "shell", Command: "true"}}},
			[]string{`job "a": depends_on: cycle: a -> a`}},
		{"unknown kind", []Def{{Name: "a", Schedule: "@daily", Task: TaskSpec{Kind: "spark"}}},
			[]string{`job "a": task: unknown kind "spark" (have shell)`}},
		{"empty command", []Def{{Name: "a", Schedule: "@daily", Task: TaskSpec{Kind: "shell"}}},
			[]string{`job "a": task: kind shell: command must not be empty`}},
		{"bad zone", []Def{{Name: "a", Schedule: "@daily", Timezone: "Mars/Olympus", Task: TaskSpec{Kind: "shell", Command: "true"}}},
			[]string{`job "a": timezone: unknown time zone "Mars/Olympus"`}},
		{"duplicate", []Def{{Name: "a", Schedule: "@daily", Task: TaskSpec{Kind: "shell", Command: "true"}}, {Name: "a", Schedule: "@daily", Task: TaskSpec{Kind: "shell", Command: "true"}}},
			[]string{`job "a": name: defined twice`}},
		{"several at once", []Def{
			{Name: "a", Schedule: "bad", Task: TaskSpec{Kind: "shell", Command: "true"}},
			{Name: "b", Schedule: "@daily", DependsOn: []string{"zz"}, Task: TaskSpec{Kind: "shell", Command: "true"}, StartDate: "yesterday"},
		}, []string{`job "a": schedule:`, `job "b": depends_on: unknown job "zz"`, `job "b": start_date: want YYYY-MM-DD`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.defs, k, DefaultDefaults())
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			var de *DefError
			if !errors.As(err, &de) || de.Job == "" || de.Field == "" {
				t.Errorf("error %v is not a *DefError naming job and field", err)
			}
		})
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "10_a.yaml"), []byte(`jobs:
  - name: extract
    schedule: "0 2 * * *"
    timezone: Asia/Shanghai
    task: {kind: shell, command: "echo {{ds}}"}
    retries: 3
    retry_delay: 30s
    timeout: 1h
    catchup: false
`), 0o644)
	os.WriteFile(filepath.Join(dir, "20_b.yml"), []byte(`jobs:
  - name: tags
    schedule: "@daily"
    depends_on: [extract]
    task: {kind: shell, command: "true"}
`), 0o644)
	defs, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	dag, err := Compile(defs, NewKinds(), DefaultDefaults())
	if err != nil {
		t.Fatal(err)
	}
	eqStrings(t, "jobs", dag.Names(), []string{"extract", "tags"})
	j, _ := dag.Job("extract")
	if j.Loc.String() != "Asia/Shanghai" || j.maxRetries != 3 || j.CatchupOn || j.Timeout.String() != "1h0m0s" {
		t.Errorf("extract: %+v", j)
	}

	os.WriteFile(filepath.Join(dir, "30_bad.yaml"), []byte("jobs:\n  - name: x\n    schedul: \"@daily\"\n"), 0o644)
	_, err = LoadDir(dir)
	if err == nil || !strings.Contains(err.Error(), "30_bad.yaml") || !strings.Contains(err.Error(), "schedul") {
		t.Errorf("unknown key: %v", err)
	}
}
