package event

import (
	"bytes"
)

// autoParser detects the format of each line: a JSON object is jsonl, five comma
// fields are taobao, four are movielens. Anything else is an error naming the formats
// tried. Use it where one topic carries lines from several shipped sources.
type autoParser struct {
	json *jsonParser
}

func (*autoParser) Format() string { return "auto" }

func (p *autoParser) Parse(line []byte) (Event, error) {
	var ev Event
	err := p.parse(line, false, &ev)
	return ev, err
}

// ParseView is Parse with the strings of taobao and movielens lines sharing line's
// bytes (see ViewParser); JSON lines are copied as by Parse.
func (p *autoParser) ParseView(line []byte, ev *Event) error {
	_, err := p.ParseViewASCII(line, ev)
	return err
}

// ParseViewASCII is ParseView, saying whether line is printable ASCII (see
// ASCIIViewParser). A printable Taobao line that parses takes one pass over its
// bytes (instead of trimming, counting commas, validating UTF-8 and splitting).
func (p *autoParser) ParseViewASCII(line []byte, ev *Event) (bool, error) {
	var commas [5]int
	n, ascii := scanPrintable(line, &commas)
	if ascii && n == 4 && line[0] != '{' && taobaoFast(line, &commas, ev) {
		return true, nil
	}
	return ascii, p.parse(line, true, ev)
}

func (p *autoParser) parse(line []byte, view bool, ev *Event) error {
	t := bytes.TrimSpace(line)
	if len(t) > 0 && t[0] == '{' {
		var err error
		*ev, err = p.json.Parse(t)
		return err
	}
	switch bytes.Count(t, []byte{','}) {
	case 4:
		return parseTaobao(t, view, ev)
	case 3:
		return parseMovieLens(t, view, ev)
	}
	*ev = Event{}
	return perr("auto", "cannot detect the format: not a JSON object, not 5 (taobao) or 4 (movielens) comma-separated fields")
}
