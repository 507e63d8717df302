package migrate

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// node is one keepalived statement: its words, where it is, and the
// statements of its { } block if it has one.
type node struct {
	words    []string
	file     string
	line     int
	block    bool
	children []*node
}

func (n *node) key() string {
	if len(n.words) == 0 {
		return ""
	}
	return n.words[0]
}

func (n *node) args() []string {
	if len(n.words) == 0 {
		return nil
	}
	return n.words[1:]
}

func (n *node) value() string { return strings.Join(n.args(), " ") }

// token is a word, "{" or "}" (unquoted), or a line end.
type token struct {
	text   string
	quoted bool // the word had quotes: "{" in quotes is a word
	eol    bool
	file   string
	line   int
}

// Limits against hostile or runaway input: include nesting (keepalived
// allows includes in includes) and total statements.
const (
	maxIncludeDepth = 8
	maxNodes        = 1 << 20
)

// kaReader reads one keepalived configuration and its includes.
type kaReader struct {
	fsys  fs.FS
	b     *builder
	total int // bytes read, over all files
	stack []string
}

// lex splits a file into tokens as keepalived does: '#' and '!' start a
// comment anywhere outside quotes; " and ' quote (the quotes are removed,
// adjacent quoted and unquoted parts form one word, and a backslash
// escapes inside quotes); '{' and '}' are tokens of their own.
// include lines are expanded in place.
func (r *kaReader) lex(file, fsPath string, data []byte, depth int, out []token) []token {
	lineNo := 0
	for _, line := range strings.Split(string(data), "\n") {
		lineNo++
		line = strings.TrimRight(line, "\r")
		words := lexLine(line, file, lineNo)
		if len(words) >= 1 && !words[0].quoted && isInclude(words[0].text) {
			out = r.include(file, fsPath, lineNo, words, depth, out)
			continue
		}
		out = append(out, words...)
		out = append(out, token{eol: true, file: file, line: lineNo})
	}
	return out
}

func isInclude(w string) bool {
	return w == "include" || (len(w) == 8 && strings.HasPrefix(w, "include") && strings.ContainsRune("rmwba", rune(w[7])))
}

func lexLine(line, file string, n int) []token {
	var out []token
	var cur strings.Builder
	in := false
	quoted := false
	var q byte
	flush := func() {
		if in {
			out = append(out, token{text: cur.String(), quoted: quoted, file: file, line: n})
		}
		cur.Reset()
		in, quoted = false, false
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		if q != 0 {
			switch {
			case c == q:
				q = 0
			case c == '\\' && i+1 < len(line):
				i++
				cur.WriteByte(unescape(line[i]))
			default:
				cur.WriteByte(c)
			}
			continue
		}
		switch c {
		case ' ', '\t', '\v', '\f':
			flush()
		case '#', '!':
			flush()
			return out
		case '{', '}':
			flush()
			out = append(out, token{text: string(c), file: file, line: n})
		case '"', '\'':
			q, in, quoted = c, true, true
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	flush()
	return out
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	}
	return c
}

// include expands "include GLOB": relative to the including file's
// directory, as keepalived does. Files are read through fsys only.
func (r *kaReader) include(file, fsPath string, n int, words []token, depth int, out []token) []token {
	kw := words[0].text
	if len(words) != 2 {
		r.b.item(file, n, kw, joinTokens(words[1:]), "want one file name or pattern: not included")
		return out
	}
	pat := words[1].text
	if r.fsys == nil {
		r.b.item(file, n, kw, pat, "includes are not read from standard input: import the file by name")
		return out
	}
	if depth >= maxIncludeDepth {
		r.b.item(file, n, kw, pat, fmt.Sprintf("not included: includes nest deeper than %d", maxIncludeDepth))
		return out
	}
	dir, disp := path.Dir(fsPath), path.Dir(file)
	var fsPat string
	if strings.HasPrefix(pat, "/") {
		fsPat = path.Clean(strings.TrimPrefix(pat, "/"))
	} else {
		fsPat = path.Join(dir, pat)
	}
	matches, err := fs.Glob(r.fsys, fsPat)
	if err != nil {
		r.b.item(file, n, kw, pat, "not included: "+err.Error())
		return out
	}
	if len(matches) == 0 {
		r.b.item(file, n, kw, pat, "no file matches: nothing included")
		return out
	}
	slices.Sort(matches) // glob(3) sorts too
	for _, m := range matches {
		show := m
		if strings.HasPrefix(pat, "/") {
			show = "/" + m
		} else if rel, ok := strings.CutPrefix(m, dir+"/"); ok && dir != "." {
			show = path.Join(disp, rel)
		} else if dir == "." {
			show = path.Join(disp, m)
		}
		if slices.Contains(r.stack, m) {
			r.b.item(file, n, kw, pat, show+": includes itself: not included again")
			continue
		}
		data, err := fs.ReadFile(r.fsys, m)
		if err != nil {
			r.b.item(file, n, kw, pat, "not included: "+err.Error())
			continue
		}
		r.total += len(data)
		if r.total > maxInput {
			r.b.item(file, n, kw, pat, fmt.Sprintf("not included: the files together exceed %d bytes", maxInput))
			return out
		}
		r.stack = append(r.stack, m)
		out = r.lex(show, m, data, depth+1, out)
		r.stack = r.stack[:len(r.stack)-1]
	}
	return out
}

func joinTokens(ts []token) string {
	var s []string
	for _, t := range ts {
		if !t.eol {
			s = append(s, t.text)
		}
	}
	return strings.Join(s, " ")
}

// tree builds statements from tokens: a line is a statement; '{' opens the
// block of the statement before it (on the same line, or the previous line
// when '{' starts a line); '}' closes it. Stray '}' and unclosed blocks are
// listed.
func (r *kaReader) tree(toks []token) []*node {
	root := &node{}
	stack := []*node{root}
	var cur *node  // statement being read on this line
	var last *node // last complete statement at the current level
	count := 0
	for _, t := range toks {
		top := stack[len(stack)-1]
		switch {
		case t.eol:
			if cur != nil {
				last = cur
			}
			cur = nil
		case t.text == "{" && !t.quoted:
			owner := cur
			if owner == nil {
				owner = last
			}
			if owner == nil || owner.block {
				owner = &node{file: t.file, line: t.line}
				top.children = append(top.children, owner)
			}
			owner.block = true
			stack = append(stack, owner)
			cur, last = nil, nil
		case t.text == "}" && !t.quoted:
			if len(stack) == 1 {
				r.b.item(t.file, t.line, "}", "", "no block to close: ignored")
				continue
			}
			stack = stack[:len(stack)-1]
			cur, last = nil, stack[len(stack)-1].lastChild()
		default:
			if cur == nil {
				count++
				if count > maxNodes {
					r.b.item(t.file, t.line, t.text, "", fmt.Sprintf("more than %d statements: the rest is not read", maxNodes))
					return root.children
				}
				cur = &node{file: t.file, line: t.line}
				top.children = append(top.children, cur)
			}
			cur.words = append(cur.words, t.text)
		}
	}
	for _, n := range stack[1:] {
		r.b.item(n.file, n.line, n.key(), strings.Join(n.args(), " "), "block not closed: read to the end of the input")
	}
	return root.children
}

func (n *node) lastChild() *node {
	if len(n.children) == 0 {
		return nil
	}
	return n.children[len(n.children)-1]
}
