package main

import "strings"

// splitStatements cuts buf at each ';' that ends a statement, as psql does: not inside
// a quoted string ('…', E'…' with its backslash escapes), a quoted identifier ("…"), a
// dollar-quoted string ($tag$…$tag$), or a comment (-- to the end of the line, /* … */,
// nested). It returns the complete statements, without their ';' and blank ones left
// out, and the text after the last ';' (an unfinished statement, or blanks).
func splitStatements(buf string) (stmts []string, rest string) {
	start := 0
	for i := 0; i < len(buf); {
		c := buf[i]
		switch {
		case c == '-' && strings.HasPrefix(buf[i:], "--"):
			if j := strings.IndexByte(buf[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(buf)
			}
		case c == '/' && strings.HasPrefix(buf[i:], "/*"):
			depth := 0
			for i < len(buf) {
				switch {
				case strings.HasPrefix(buf[i:], "/*"):
					depth, i = depth+1, i+2
				case strings.HasPrefix(buf[i:], "*/"):
					depth, i = depth-1, i+2
				default:
					i++
				}
				if depth == 0 {
					break
				}
			}
		case c == '\'':
			escapes := i > 0 && (buf[i-1] == 'E' || buf[i-1] == 'e') && (i == 1 || !identChar(buf[i-2]))
			i = closeQuote(buf, i+1, '\'', escapes)
		case c == '"':
			i = closeQuote(buf, i+1, '"', false)
		case c == '$' && (i == 0 || !identChar(buf[i-1])):
			if tag, ok := dollarTag(buf[i:]); ok {
				if j := strings.Index(buf[i+len(tag):], tag); j >= 0 {
					i += len(tag) + j + len(tag)
				} else {
					i = len(buf)
				}
			} else {
				i++
			}
		case c == ';':
			if s := strings.TrimSpace(buf[start:i]); s != "" {
				stmts = append(stmts, s)
			}
			i++
			start = i
		default:
			i++
		}
	}
	return stmts, buf[start:]
}

// closeQuote returns the index after the quote q that closes a string starting at i; a
// doubled quote is part of the string, and so is a backslash-escaped one when escapes.
func closeQuote(buf string, i int, q byte, escapes bool) int {
	for i < len(buf) {
		switch {
		case escapes && buf[i] == '\\':
			i += 2
		case buf[i] == q && i+1 < len(buf) && buf[i+1] == q:
			i += 2
		case buf[i] == q:
			return i + 1
		default:
			i++
		}
	}
	return len(buf)
}

// dollarTag returns the $tag$ that s starts with.
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '$':
			return s[:j+1], true
		case !identChar(c) || (j == 1 && c >= '0' && c <= '9'):
			return "", false
		}
	}
	return "", false
}

func identChar(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}
