package tagging

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestTablesDoc freezes TABLES.md: every output table has exactly the documented
// columns, in order, with the documented types.
func TestTablesDoc(t *testing.T) {
	doc, err := os.ReadFile("TABLES.md")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	var cur string
	head := regexp.MustCompile("^### `([a-z_]+)`")
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\| ([^|]+) \\|")
	for _, line := range strings.Split(string(doc), "\n") {
		if m := head.FindStringSubmatch(line); m != nil {
			cur = m[1]
		} else if m := row.FindStringSubmatch(line); m != nil && cur != "" {
			want[cur] = append(want[cur], m[1]+" "+strings.TrimSpace(m[2]))
		}
	}
	ctx := context.Background()
	tg := edgeData(t)
	if _, err := tg.RunModel(ctx, "2024-05-10", true); err != nil {
		t.Fatal(err)
	}
	def := &Definition{Name: "activity", Type: "rule", SQL: "SELECT user_id, 'high' AS value, 1.0 AS weight FROM dws_user_daily WHERE dt = DATE '{{ ds }}'"}
	if _, err := tg.RunDefinition(ctx, def, "2024-05-10"); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.RunAudience(ctx, &Audience{Name: "a", Expression: "interest:A > 0.1"}, "2024-05-10"); err != nil {
		t.Fatal(err)
	}
	if len(want) != 8 {
		t.Fatalf("TABLES.md documents %d tables: %v", len(want), want)
	}
	for table, cols := range want {
		rows, err := tg.db.Query("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position", table)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var c, typ string
			rows.Scan(&c, &typ)
			got = append(got, c+" "+typ)
		}
		rows.Close()
		if strings.Join(got, ", ") != strings.Join(cols, ", ") {
			t.Errorf("%s:\n got  %s\n want %s", table, strings.Join(got, ", "), strings.Join(cols, ", "))
		}
	}
}
