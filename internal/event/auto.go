package event

import (
	"bytes"
)

// autoParser detects the format of each line: a JSON object is jsonl, five comma
// fields are taobao, four are movielens. Anything else is an error naming the formats
// tried. Use it where one topic carries lines from several shipped sources.
type autoParser struct {
	json      *jsonParser
	taobao    taobaoParser
	movielens movielensParser
}

func (*autoParser) Format() string { return "auto" }

func (p *autoParser) Parse(line []byte) (Event, error) {
	t := bytes.TrimSpace(line)
	if len(t) > 0 && t[0] == '{' {
		return p.json.Parse(t)
	}
	switch bytes.Count(t, []byte{','}) {
	case 4:
		return p.taobao.Parse(t)
	case 3:
		return p.movielens.Parse(t)
	}
	return Event{}, perr("auto", "cannot detect the format: not a JSON object, not 5 (taobao) or 4 (movielens) comma-separated fields")
}
