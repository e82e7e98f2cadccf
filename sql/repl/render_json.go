package repl

import (
	"bufio"
	"encoding/json"
	"io"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// jsonObjects writes one JSON object per row, keys in column order, calling sep before
// every row but the first.
func jsonObjects(bw *bufio.Writer, res *tsql.Result, sep string) error {
	keys := make([]string, len(res.Columns))
	for i, c := range res.Columns {
		k, _ := json.Marshal(c.Name)
		keys[i] = string(k)
	}
	n := 0
	for res.Next() {
		if n > 0 {
			bw.WriteString(sep)
		}
		n++
		bw.WriteString("{")
		for i, v := range res.Values() {
			if i > 0 {
				bw.WriteString(",")
			}
			b, err := json.Marshal(tsql.JSONValue(v, res.Columns[i].Type))
			if err != nil {
				return err
			}
			bw.WriteString(keys[i])
			bw.WriteString(":")
			bw.Write(b)
		}
		bw.WriteString("}")
	}
	if n > 0 && sep == "\n" {
		bw.WriteString("\n")
	}
	return nil
}

// renderJSON is DuckDB's .mode json: an array of objects, one per line.
func renderJSON(w io.Writer, res *tsql.Result, _ *style) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("[")
	if err := jsonObjects(bw, res, ",\n"); err != nil {
		return err
	}
	bw.WriteString("]\n")
	return bw.Flush()
}

// renderJSONLines is DuckDB's .mode jsonlines (NDJSON): one object a line.
func renderJSONLines(w io.Writer, res *tsql.Result, _ *style) error {
	bw := bufio.NewWriter(w)
	if err := jsonObjects(bw, res, "\n"); err != nil {
		return err
	}
	return bw.Flush()
}
