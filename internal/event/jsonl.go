package event

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// jsonParser parses one JSON object per line. Scalar values are taken as text (numbers
// keep their literal form); nested objects and arrays go to Props as JSON text.
type jsonParser struct{ m *mapper }

func (p *jsonParser) Format() string { return "jsonl" }

func (p *jsonParser) Parse(line []byte) (Event, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return Event{}, perr("jsonl", "empty line")
	}
	if line[0] != '{' {
		return Event{}, perr("jsonl", "not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return Event{}, perr("jsonl", "invalid JSON: %v", err)
	}
	if dec.More() {
		return Event{}, perr("jsonl", "trailing data after the JSON object")
	}
	get := func(name string) (string, bool) {
		v, ok := obj[name]
		if !ok || v == nil {
			return "", false
		}
		return scalar(v), true
	}
	return p.m.build("jsonl", get, func(used map[string]bool, props map[string]string) {
		for k, v := range obj {
			if !used[k] && v != nil {
				props[k] = scalar(v)
			}
		}
	})
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
