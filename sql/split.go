package sql

import "strings"

// Split cuts a script into statements at semicolons that are outside quotes, comments and
// dollar-quoted strings. rest is the unfinished tail (no closing semicolon yet); the REPL
// keeps reading lines until it is empty. Statements keep their text minus the semicolon;
// empty ones are dropped.
func Split(script string) (stmts []string, rest string) {
	stmts, rest, _ = SplitOpen(script)
	return stmts, rest
}

// SplitOpen is Split that also says whether the script ends inside a /* comment, which
// rest does not show (a comment is no statement): a shell reading lines keeps reading.
func SplitOpen(script string) (stmts []string, rest string, inComment bool) {
	start := 0
	i := 0
	n := len(script)
	for i < n {
		c := script[i]
		switch {
		case c == '\'' || c == '"':
			i = skipQuoted(script, i, c)
			continue
		case c == '-' && i+1 < n && script[i+1] == '-':
			j := strings.IndexByte(script[i:], '\n')
			if j < 0 {
				i = n
			} else {
				i += j + 1
			}
			continue
		case c == '/' && i+1 < n && script[i+1] == '*':
			j := strings.Index(script[i+2:], "*/")
			if j < 0 {
				i, inComment = n, true
			} else {
				i += j + 4
			}
			continue
		case c == '$':
			if tag, ok := dollarTag(script[i:]); ok {
				j := strings.Index(script[i+len(tag):], tag)
				if j < 0 {
					i = n
				} else {
					i += len(tag) + j + len(tag)
				}
				continue
			}
		case c == ';':
			if s := strings.TrimSpace(script[start:i]); s != "" && !onlyComments(s) {
				stmts = append(stmts, s)
			}
			start = i + 1
		}
		i++
	}
	rest = strings.TrimSpace(script[start:])
	if onlyComments(rest) {
		rest = ""
	}
	return stmts, rest, inComment
}

func skipQuoted(s string, i int, q byte) int {
	for j := i + 1; j < len(s); j++ {
		if s[j] == q {
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(s)
}

// dollarTag recognises $$ or $tag$ at the start of s.
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		c := s[j]
		if c == '$' {
			return s[:j+1], true
		}
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || j > 1 && c >= '0' && c <= '9') {
			return "", false
		}
	}
	return "", false
}

// onlyComments reports text that holds nothing but comments and space.
func onlyComments(s string) bool {
	for {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			return true
		case strings.HasPrefix(s, "--"):
			j := strings.IndexByte(s, '\n')
			if j < 0 {
				return true
			}
			s = s[j+1:]
		case strings.HasPrefix(s, "/*"):
			j := strings.Index(s, "*/")
			if j < 0 {
				return true
			}
			s = s[j+2:]
		default:
			return false
		}
	}
}
