package tagging

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Audience expressions: a boolean expression over tags.
//
//	interest:Comedy > 0.3 AND activity = 'high'
//	(interest:"Sci-Fi" >= 0.5 OR interest:Horror) AND NOT rfm IN ('lost', 'hibernating')
//
//	expr       := or
//	or         := and { OR and }
//	and        := not { AND not }
//	not        := NOT not | '(' expr ')' | comparison
//	comparison := operand [ op operand | [NOT] IN '(' literal {, literal} ')' | IS [NOT] NULL ]
//	operand    := interest:NAME | interest:"NAME" | tag_name | 'string' | number
//	op         := = | != | <> | < | <= | > | >=
//
// interest:NAME is the user's weight for that model tag on ds, 0 when the user does not
// have it; a bare interest:NAME means interest:NAME > 0. tag_name is the value of the
// definition tag of that name (NULL when the user has none, so comparisons are false);
// compared with a number it is read as a number. Keywords are case-insensitive.

type exprKind int

const (
	exInterest exprKind = iota // interest:NAME
	exDef                      // definition tag value
	exString
	exNumber
	exCompare // L op R
	exIn      // L [NOT] IN list
	exIsNull  // L IS [NOT] NULL
	exAnd
	exOr
	exNot
)

type expr struct {
	kind exprKind
	name string // tag / string literal / operator
	num  float64
	neg  bool // NOT IN, IS NOT NULL
	args []*expr
}

type token struct {
	kind string // "interest", "ident", "string", "number", "op", "(", ")", ",", "eof"
	text string
	pos  int
}

func lexExpr(s string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(s) {
		// Decode whole characters: a byte of a multi-byte character read as a rune of
		// its own is a Latin-1 letter, space (0x85, 0xA0) or symbol, which cut tag names
		// mid-character (interest:传 > 0.5 asked for the tag "\xe4\xbc", which nobody has).
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case unicode.IsSpace(c):
			i += size
		case c == '(' || c == ')' || c == ',':
			toks = append(toks, token{string(c), string(c), i})
			i++
		case c == '\'':
			j := i + 1
			var b strings.Builder
			for {
				if j >= len(s) {
					return nil, fmt.Errorf("unterminated string at %d", i)
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			toks = append(toks, token{"string", b.String(), i})
			i = j + 1
		case strings.ContainsRune("=!<>", c):
			j := i + 1
			if j < len(s) && (s[j] == '=' || (c == '<' && s[j] == '>')) {
				j++
			}
			op := s[i:j]
			if op == "!" {
				return nil, fmt.Errorf("unexpected '!' at %d", i)
			}
			toks = append(toks, token{"op", op, i})
			i = j
		case c == '-' || c == '.' || unicode.IsDigit(c):
			j := i + 1
			for j < len(s) && (unicode.IsDigit(rune(s[j])) || s[j] == '.' || s[j] == 'e' || s[j] == 'E' ||
				(s[j] == '-' || s[j] == '+') && (s[j-1] == 'e' || s[j-1] == 'E')) { // 1e-5
				j++
			}
			if _, err := strconv.ParseFloat(s[i:j], 64); err != nil {
				return nil, fmt.Errorf("bad number %q at %d", s[i:j], i)
			}
			toks = append(toks, token{"number", s[i:j], i})
			i = j
		case unicode.IsLetter(c) || c == '_':
			j := i
			for j < len(s) {
				r, n := utf8.DecodeRuneInString(s[j:])
				if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
					break
				}
				j += n
			}
			word := s[i:j]
			if strings.EqualFold(word, "interest") && j < len(s) && s[j] == ':' {
				j++
				if j < len(s) && s[j] == '"' {
					k := strings.IndexByte(s[j+1:], '"')
					if k < 0 {
						return nil, fmt.Errorf("unterminated tag name at %d", j)
					}
					toks = append(toks, token{"interest", s[j+1 : j+1+k], i})
					i = j + k + 2
					continue
				}
				k := j
				for k < len(s) {
					r, n := utf8.DecodeRuneInString(s[k:])
					if unicode.IsSpace(r) || strings.ContainsRune("()=!<>,'", r) {
						break
					}
					k += n
				}
				if k == j {
					return nil, fmt.Errorf("missing tag name after interest: at %d", i)
				}
				toks = append(toks, token{"interest", s[j:k], i})
				i = k
				continue
			}
			toks = append(toks, token{"ident", word, i})
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q at %d", c, i)
		}
	}
	return append(toks, token{"eof", "", len(s)}), nil
}

type exprParser struct {
	toks []token
	i    int
}

func (p *exprParser) peek() token { return p.toks[p.i] }
func (p *exprParser) next() token { t := p.toks[p.i]; p.i++; return t }
func (p *exprParser) keyword(k string) bool {
	t := p.peek()
	if t.kind == "ident" && strings.EqualFold(t.text, k) {
		p.i++
		return true
	}
	return false
}

// ParseExpression parses an audience expression.
func ParseExpression(s string) (*expr, error) {
	toks, err := lexExpr(s)
	if err != nil {
		return nil, err
	}
	p := &exprParser{toks: toks}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != "eof" {
		return nil, fmt.Errorf("unexpected %q at %d", t.text, t.pos)
	}
	return e, nil
}

func (p *exprParser) or() (*expr, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.keyword("OR") {
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = &expr{kind: exOr, args: []*expr{l, r}}
	}
	return l, nil
}

func (p *exprParser) and() (*expr, error) {
	l, err := p.not()
	if err != nil {
		return nil, err
	}
	for p.keyword("AND") {
		r, err := p.not()
		if err != nil {
			return nil, err
		}
		l = &expr{kind: exAnd, args: []*expr{l, r}}
	}
	return l, nil
}

func (p *exprParser) not() (*expr, error) {
	if p.keyword("NOT") {
		e, err := p.not()
		if err != nil {
			return nil, err
		}
		return &expr{kind: exNot, args: []*expr{e}}, nil
	}
	if p.peek().kind == "(" {
		p.next()
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != ")" {
			return nil, fmt.Errorf("want ')' at %d, got %q", t.pos, t.text)
		}
		return e, nil
	}
	return p.comparison()
}

func (p *exprParser) operand() (*expr, error) {
	t := p.next()
	switch t.kind {
	case "interest":
		return &expr{kind: exInterest, name: t.text}, nil
	case "ident":
		for _, k := range []string{"AND", "OR", "NOT", "IN", "IS", "NULL"} {
			if strings.EqualFold(t.text, k) {
				return nil, fmt.Errorf("unexpected %s at %d", strings.ToUpper(t.text), t.pos)
			}
		}
		return &expr{kind: exDef, name: t.text}, nil
	case "string":
		return &expr{kind: exString, name: t.text}, nil
	case "number":
		f, _ := strconv.ParseFloat(t.text, 64)
		return &expr{kind: exNumber, num: f}, nil
	case "eof":
		return nil, fmt.Errorf("unexpected end of expression")
	}
	return nil, fmt.Errorf("unexpected %q at %d", t.text, t.pos)
}

func (p *exprParser) comparison() (*expr, error) {
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	switch t := p.peek(); {
	case t.kind == "op":
		p.next()
		r, err := p.operand()
		if err != nil {
			return nil, err
		}
		if l.kind != exInterest && l.kind != exDef && r.kind != exInterest && r.kind != exDef {
			return nil, fmt.Errorf("comparison at %d compares two constants", t.pos)
		}
		return &expr{kind: exCompare, name: t.text, args: []*expr{l, r}}, nil
	case t.kind == "ident" && (strings.EqualFold(t.text, "IN") || strings.EqualFold(t.text, "NOT")):
		neg := p.keyword("NOT")
		if !p.keyword("IN") {
			return nil, fmt.Errorf("want IN at %d", p.peek().pos)
		}
		if t := p.next(); t.kind != "(" {
			return nil, fmt.Errorf("want '(' after IN at %d", t.pos)
		}
		e := &expr{kind: exIn, neg: neg, args: []*expr{l}}
		for {
			v, err := p.operand()
			if err != nil {
				return nil, err
			}
			if v.kind != exString && v.kind != exNumber {
				return nil, fmt.Errorf("IN lists take constants only")
			}
			e.args = append(e.args, v)
			t := p.next()
			if t.kind == ")" {
				break
			}
			if t.kind != "," {
				return nil, fmt.Errorf("want ',' or ')' at %d", t.pos)
			}
		}
		return e, nil
	case t.kind == "ident" && strings.EqualFold(t.text, "IS"):
		p.next()
		neg := p.keyword("NOT")
		if !p.keyword("NULL") {
			return nil, fmt.Errorf("want NULL after IS at %d", p.peek().pos)
		}
		return &expr{kind: exIsNull, neg: neg, args: []*expr{l}}, nil
	}
	if l.kind == exInterest {
		return &expr{kind: exCompare, name: ">", args: []*expr{l, {kind: exNumber, num: 0}}}, nil
	}
	return nil, fmt.Errorf("%s alone is not a condition: compare it with something", describe(l))
}

func describe(e *expr) string {
	switch e.kind {
	case exInterest:
		return "interest:" + e.name
	case exDef:
		return "tag " + e.name
	case exString:
		return lit(e.name)
	case exNumber:
		return strconv.FormatFloat(e.num, 'g', -1, 64)
	}
	return "expression"
}

// refs lists the interest tags and definition tags an expression uses.
func (e *expr) refs(interest, defs map[string]bool) {
	switch e.kind {
	case exInterest:
		interest[e.name] = true
	case exDef:
		defs[e.name] = true
	}
	for _, a := range e.args {
		a.refs(interest, defs)
	}
}

// sql renders the expression with column references from alias maps.
func (e *expr) sql(interestCol, defCol map[string]string) string {
	numeric := func(args []*expr) bool {
		for _, a := range args {
			if a.kind == exNumber || a.kind == exInterest {
				return true
			}
		}
		return false
	}
	operand := func(a *expr, asNumber bool) string {
		switch a.kind {
		case exInterest:
			return interestCol[a.name]
		case exDef:
			if asNumber {
				return "TRY_CAST(" + defCol[a.name] + " AS DOUBLE)"
			}
			return defCol[a.name]
		case exString:
			return lit(a.name)
		case exNumber:
			return flt(a.num)
		}
		return a.sql(interestCol, defCol)
	}
	switch e.kind {
	case exAnd:
		return "(" + e.args[0].sql(interestCol, defCol) + " AND " + e.args[1].sql(interestCol, defCol) + ")"
	case exOr:
		return "(" + e.args[0].sql(interestCol, defCol) + " OR " + e.args[1].sql(interestCol, defCol) + ")"
	case exNot:
		return "(NOT " + e.args[0].sql(interestCol, defCol) + ")"
	case exCompare:
		op := e.name
		if op == "!=" {
			op = "<>"
		}
		num := numeric(e.args)
		return "(" + operand(e.args[0], num) + " " + op + " " + operand(e.args[1], num) + ")"
	case exIn:
		num := numeric(e.args[1:])
		var vs []string
		for _, a := range e.args[1:] {
			vs = append(vs, operand(a, num))
		}
		not := ""
		if e.neg {
			not = "NOT "
		}
		return "(" + operand(e.args[0], num) + " " + not + "IN (" + strings.Join(vs, ", ") + "))"
	case exIsNull:
		not := ""
		if e.neg {
			not = "NOT "
		}
		return "(" + operand(e.args[0], false) + " IS " + not + "NULL)"
	}
	return operand(e, false)
}
