package event

import "time"

// ASCIIViewParser is a ViewParser that also says whether the line it parsed is all
// printable ASCII (bytes 0x21 to 0x7e: no spaces, controls or multi-byte runes), and
// so valid UTF-8: a caller that keeps the line as text need not validate it again.
// false says nothing about the line (it may well be valid UTF-8).
type ASCIIViewParser interface {
	ViewParser
	ParseViewASCII(line []byte, ev *Event) (ascii bool, err error)
}

// scanPrintable walks line once: whether every byte is printable ASCII (see
// ASCIIViewParser), the number of commas, and where the first len(commas) are. It
// stops at the first byte that is not printable ASCII.
//
// On such a line the general parse's first passes are no-ops or known: bytes.TrimSpace
// and TrimRight("\r") remove nothing (whitespace is not printable), utf8.Valid is
// true, and the comma count and split are these. The fast paths below take the lines
// of this shape that parse and give the rest to the general parse, so results and
// errors are the general parse's (FuzzParseView compares them with the reference).
func scanPrintable(line []byte, commas *[5]int) (n int, ok bool) {
	for i, c := range line {
		if c <= ' ' || c >= 0x7f {
			return n, false
		}
		if c == ',' {
			if n < len(commas) {
				commas[n] = i
			}
			n++
		}
	}
	return n, true
}

// taobaoFast parses a printable-ASCII line with 4 commas (commas holds them) when
// it is a valid Taobao line: fields non-empty, a known behaviour, a timestamp of
// plain digits (parseInt's fast path, inlined). false: let parseTaobao parse it
// (and say why it does not parse).
func taobaoFast(line []byte, commas *[5]int, ev *Event) bool {
	c0, c1, c2, c3 := commas[0], commas[1], commas[2], commas[3]
	if c0 == 0 || c1 == c0+1 || c2 == c1+1 || c3 == c2+1 || c3 == len(line)-1 {
		return false
	}
	action, ok := taobaoAction(line[c2+1 : c3])
	if !ok {
		return false
	}
	ts := line[c3+1:]
	if len(ts) > 18 {
		return false // parseInt's slow path
	}
	var sec int64
	for _, c := range ts {
		if c < '0' || c > '9' {
			return false
		}
		sec = sec*10 + int64(c-'0')
	}
	*ev = Event{
		UserID:    viewString(line[:c0]),
		ItemID:    viewString(line[c0+1 : c1]),
		Category:  viewString(line[c1+1 : c2]),
		Action:    action,
		EventTime: time.Unix(sec, 0).UTC(),
	}
	return true
}
