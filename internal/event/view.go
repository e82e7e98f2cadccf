package event

import "unsafe"

// ViewParser is implemented by parsers that can parse a line into an Event whose
// strings share the line's bytes instead of copying them (taobao, movielens, and auto
// for those two layouts). Copying costs an allocation per field, which for a
// streaming batch of 300k short lines was most of what parsing cost and most of the
// objects the garbage collector had to trace.
//
// ParseView overwrites *ev; on error *ev is zero or partly set, as Parse's Event.
// The strings of a viewed Event are valid only while line is not modified: the caller
// must own line's bytes for as long as it keeps the Event, and copy (strings.Clone)
// any string it keeps longer, e.g. as a map key in state.
type ViewParser interface {
	Parser
	ParseView(line []byte, ev *Event) error
}

// View returns p as a ViewParser: p itself when it has ParseView, else p with a
// ParseView that copies (Parse).
func View(p Parser) ViewParser {
	if v, ok := p.(ViewParser); ok {
		return v
	}
	return copying{p}
}

type copying struct{ Parser }

func (c copying) ParseView(line []byte, ev *Event) error {
	var err error
	*ev, err = c.Parse(line)
	return err
}

// fieldString turns a field of a line into a string: a copy, or with view the line's
// own bytes (see ViewParser).
func fieldString(b []byte, view bool) string {
	if !view {
		return string(b)
	}
	return viewString(b)
}

func viewString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
