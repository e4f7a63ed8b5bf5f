// Package sqlscript splits a MySQL script into statements and runs them one
// by one, the way the mysql command-line client does, so that programs can
// apply the project's scripts through database/sql (which sends one
// statement per call unless multiStatements is enabled, and that option
// would hide which statement failed).
//
// The splitter knows MySQL's lexical rules that matter for finding
// statement ends: '…' and "…" strings with backslash and doubled-quote
// escapes, `…` identifiers, "-- " and "#" line comments, /* … */ block
// comments, and the client's DELIMITER command. Executable comments
// (/*! … */) and optimizer hints (/*+ … */) are kept: the server reads them.
// Scripts are assumed not to rely on the NO_BACKSLASH_ESCAPES SQL mode
// (ordersdb-setup.sql turns it off for its session).
package sqlscript

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// Statement is one statement of a script, without its delimiter and plain
// comments, and the 1-based line it starts on.
type Statement struct {
	SQL  string
	Line int
}

// SyntaxError reports a script that cannot be split: an unterminated string,
// identifier or comment, or a DELIMITER command without a delimiter.
type SyntaxError struct {
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Split splits script into its statements. Statements end at the current
// delimiter (";" until a DELIMITER command changes it) outside strings,
// quoted identifiers and comments; the text after the last delimiter is a
// statement too. Empty statements (";;", a script of only comments) are
// dropped, because the server would reject them as empty queries.
func Split(script string) ([]Statement, error) {
	s := splitter{src: script, delim: ";", line: 1}
	if err := s.run(); err != nil {
		return nil, err
	}
	return s.out, nil
}

type splitter struct {
	src   string
	delim string
	line  int // line of src[i]
	out   []Statement

	cur       strings.Builder
	startLine int // line of the current statement's first token; 0 before it
}

func (s *splitter) run() error {
	lineStart := true
	for i := 0; i < len(s.src); {
		if lineStart {
			lineStart = false
			if n, err := s.delimiterCommand(i); err != nil {
				return err
			} else if n > 0 {
				i += n
				continue
			}
		}
		c := s.src[i]
		rest := s.src[i:]
		switch {
		case c == '\n':
			s.cur.WriteByte(c)
			s.line++
			lineStart = true
			i++
		case strings.HasPrefix(rest, s.delim):
			s.flush()
			i += len(s.delim)
		case c == '#' || isDashComment(rest):
			// The newline stays: it ends the comment and counts the line.
			if end := strings.IndexByte(rest, '\n'); end >= 0 {
				i += end
			} else {
				i = len(s.src)
			}
		case strings.HasPrefix(rest, "/*"):
			end := strings.Index(rest[2:], "*/")
			if end < 0 {
				return &SyntaxError{Line: s.line, Msg: "unterminated /* comment"}
			}
			text := rest[:2+end+2]
			if strings.HasPrefix(text, "/*!") || strings.HasPrefix(text, "/*+") {
				s.token(text)
			} else {
				// A comment separates tokens ("SELECT/**/1"); keep them apart.
				s.cur.WriteByte(' ')
				s.line += strings.Count(text, "\n")
			}
			i += len(text)
		case c == '\'' || c == '"' || c == '`':
			n, ok := quotedLen(rest)
			if !ok {
				return &SyntaxError{Line: s.line, Msg: fmt.Sprintf("unterminated %c-quoted text", c)}
			}
			s.token(rest[:n])
			i += n
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			s.cur.WriteByte(c)
			i++
		default:
			// Take the whole run of ordinary bytes at once.
			n := 1
			for n < len(rest) && !s.special(rest[n]) {
				n++
			}
			s.token(rest[:n])
			i += n
		}
	}
	s.flush()
	return nil
}

// special reports whether c may begin something other than ordinary
// statement text: a newline, whitespace, quote, comment or delimiter.
func (s *splitter) special(c byte) bool {
	switch c {
	case '\n', ' ', '\t', '\r', '\f', '\v', '\'', '"', '`', '#', '-', '/':
		return true
	}
	return c == s.delim[0]
}

// token appends significant text, which starts a statement if none is open.
func (s *splitter) token(text string) {
	if s.startLine == 0 {
		s.startLine = s.line
	}
	s.cur.WriteString(text)
	s.line += strings.Count(text, "\n")
}

func (s *splitter) flush() {
	if s.startLine != 0 {
		s.out = append(s.out, Statement{SQL: strings.TrimSpace(s.cur.String()), Line: s.startLine})
	}
	s.cur.Reset()
	s.startLine = 0
}

// delimiterCommand handles a DELIMITER line at src[i] (the start of a line)
// and returns how many bytes it consumed, up to but not including the
// newline; 0 means the line is not a DELIMITER command. Like the mysql
// client, it is recognised only between statements.
func (s *splitter) delimiterCommand(i int) (int, error) {
	if s.startLine != 0 {
		return 0, nil
	}
	line := s.src[i:]
	if end := strings.IndexByte(line, '\n'); end >= 0 {
		line = line[:end]
	}
	trimmed := strings.TrimLeft(line, " \t")
	const cmd = "delimiter"
	if len(trimmed) < len(cmd) || !strings.EqualFold(trimmed[:len(cmd)], cmd) {
		return 0, nil
	}
	args := trimmed[len(cmd):]
	if args != "" && args[0] != ' ' && args[0] != '\t' {
		return 0, nil // a word that merely starts with "delimiter"
	}
	fields := strings.Fields(args)
	if len(fields) == 0 {
		return 0, &SyntaxError{Line: s.line, Msg: "DELIMITER without a delimiter"}
	}
	s.delim = fields[0]
	return len(line), nil
}

// isDashComment reports whether s starts a "-- " comment: MySQL requires
// whitespace (or the end of input) after the two dashes, so "1--2" is
// arithmetic.
func isDashComment(s string) bool {
	if !strings.HasPrefix(s, "--") {
		return false
	}
	return len(s) == 2 || strings.ContainsRune(" \t\r\n\f\v", rune(s[2]))
}

// quotedLen returns the length of the quoted text at the start of s, quotes
// included. A doubled quote character stands for itself; in strings (not
// in `identifiers`) a backslash escapes the next byte.
func quotedLen(s string) (int, bool) {
	q := s[0]
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && q != '`':
			i++
		case s[i] == q:
			if i+1 < len(s) && s[i+1] == q {
				i++
				continue
			}
			return i + 1, true
		}
	}
	return 0, false
}

// Execer runs one statement; *sql.DB, *sql.Conn and *sql.Tx implement it.
// Session state (user variables, prepared statements) survives between
// statements only on a *sql.Conn or *sql.Tx.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Exec runs stmts in order, stopping at the first failure, and returns how
// many succeeded. The error names the script (name) and the line of the
// statement that failed, and wraps the driver's error.
func Exec(ctx context.Context, ex Execer, name string, stmts []Statement) (int, error) {
	return ExecWith(ctx, ex, name, stmts, Options{})
}

// Options tune ExecWith for scripts that handle a secret.
type Options struct {
	// Secrets are values (passwords) that must never appear in an error.
	Secrets []string
	// Sensitive reports statements whose failure may echo a secret (a
	// server syntax error quotes the statement text near the error, which
	// for a prepared statement built from a password is the password).
	Sensitive func(Statement) bool
}

// ErrWithheld marks an error whose server message was left out because it
// could hold a secret.
var ErrWithheld = errors.New("the server's message is withheld: it may contain a password")

// ExecWith is Exec with options. When a statement Sensitive reports fails,
// or the error's text contains one of the Secrets, the error keeps the
// script name, the line, and (for a server error) its number and SQLSTATE,
// and wraps ErrWithheld instead of the driver's error, so that no caller
// (a CloudFormation response, a log line) can pass the secret on.
func ExecWith(ctx context.Context, ex Execer, name string, stmts []Statement, opts Options) (int, error) {
	for i, st := range stmts {
		if _, err := ex.ExecContext(ctx, st.SQL); err != nil {
			if opts.withhold(st, err) {
				return i, withheld(fmt.Sprintf("%s:%d", name, st.Line), err)
			}
			return i, fmt.Errorf("%s:%d: %w", name, st.Line, err)
		}
	}
	return len(stmts), nil
}

func (o Options) withhold(st Statement, err error) bool {
	if o.Sensitive != nil && o.Sensitive(st) {
		return true
	}
	msg := err.Error()
	for _, s := range o.Secrets {
		if s != "" && strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// Withhold returns err prefixed with what, or, when err's text contains
// one of secrets, an error that keeps only the server's error number.
func Withhold(what string, err error, secrets ...string) error {
	if (Options{Secrets: secrets}).withhold(Statement{}, err) {
		return withheld(what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func withheld(prefix string, err error) error {
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		if myErr.SQLState == [5]byte{} {
			return fmt.Errorf("%s: MySQL error %d: %w", prefix, myErr.Number, ErrWithheld)
		}
		return fmt.Errorf("%s: MySQL error %d (SQLSTATE %s): %w", prefix, myErr.Number, myErr.SQLState[:], ErrWithheld)
	}
	return fmt.Errorf("%s: %w", prefix, ErrWithheld)
}

// Run splits script and executes its statements with Exec.
func Run(ctx context.Context, ex Execer, name, script string) (int, error) {
	stmts, err := Split(script)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return Exec(ctx, ex, name, stmts)
}
