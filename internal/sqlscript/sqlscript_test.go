package sqlscript_test

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/unified-streaming-etl/etl/internal/sqlscript"
	etlsql "github.com/unified-streaming-etl/etl/sql"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   []sqlscript.Statement
	}{
		{
			name:   "statements end at semicolons and keep the line they start on",
			script: "CREATE TABLE a (x INT);\n\nINSERT INTO a\nVALUES (1);\n",
			want: []sqlscript.Statement{
				{SQL: "CREATE TABLE a (x INT)", Line: 1},
				{SQL: "INSERT INTO a\nVALUES (1)", Line: 3},
			},
		},
		{
			name:   "the text after the last semicolon is a statement",
			script: "SELECT 1;\nSELECT 2",
			want:   []sqlscript.Statement{{SQL: "SELECT 1", Line: 1}, {SQL: "SELECT 2", Line: 2}},
		},
		{
			name:   "semicolons inside strings and quoted identifiers do not end a statement",
			script: "INSERT INTO `a;b` VALUES ('x;y', \"p;q\");",
			want:   []sqlscript.Statement{{SQL: "INSERT INTO `a;b` VALUES ('x;y', \"p;q\")", Line: 1}},
		},
		{
			name:   "doubled quotes and backslashes escape quotes inside strings",
			script: `SELECT 'it''s;', 'it\'s;', "say ""hi;""", 'back\\';SELECT 2;`,
			want: []sqlscript.Statement{
				{SQL: `SELECT 'it''s;', 'it\'s;', "say ""hi;""", 'back\\'`, Line: 1},
				{SQL: "SELECT 2", Line: 1},
			},
		},
		{
			name:   "a backslash does not escape inside a quoted identifier",
			script: "SELECT 1 AS `a\\`; SELECT 2;",
			want:   []sqlscript.Statement{{SQL: "SELECT 1 AS `a\\`", Line: 1}, {SQL: "SELECT 2", Line: 1}},
		},
		{
			name:   "line comments are dropped, including semicolons in them",
			script: "-- first; comment\nSELECT 1; # trailing; comment\n--\nSELECT 2;",
			want:   []sqlscript.Statement{{SQL: "SELECT 1", Line: 2}, {SQL: "SELECT 2", Line: 4}},
		},
		{
			name:   "two dashes without a following space are an operator, not a comment",
			script: "SELECT 5--3;",
			want:   []sqlscript.Statement{{SQL: "SELECT 5--3", Line: 1}},
		},
		{
			name:   "block comments are dropped without gluing the tokens around them",
			script: "SELECT/* one;\ntwo */1;\n/* only a comment; */\nSELECT 2;",
			want:   []sqlscript.Statement{{SQL: "SELECT 1", Line: 1}, {SQL: "SELECT 2", Line: 4}},
		},
		{
			name:   "executable comments and optimizer hints are kept for the server",
			script: "/*!40101 SET NAMES utf8mb4 */;\nSELECT /*+ NO_INDEX(a) */ x FROM a;",
			want: []sqlscript.Statement{
				{SQL: "/*!40101 SET NAMES utf8mb4 */", Line: 1},
				{SQL: "SELECT /*+ NO_INDEX(a) */ x FROM a", Line: 2},
			},
		},
		{
			name: "DELIMITER changes the statement end so routine bodies stay whole",
			script: "DELIMITER $$\nCREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND$$\n" +
				"delimiter ;\nCALL p();\n",
			want: []sqlscript.Statement{
				{SQL: "CREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND", Line: 2},
				{SQL: "CALL p()", Line: 8},
			},
		},
		{
			name:   "a word that only starts with delimiter is ordinary text",
			script: "delimiters;",
			want:   []sqlscript.Statement{{SQL: "delimiters", Line: 1}},
		},
		{
			name:   "empty statements and comment-only scripts give nothing to run",
			script: ";;\n  ; -- nothing\n/* at all */",
			want:   nil,
		},
		{
			name:   "Windows line endings are whitespace",
			script: "SELECT 1;\r\nSELECT 2;\r\n",
			want:   []sqlscript.Statement{{SQL: "SELECT 1", Line: 1}, {SQL: "SELECT 2", Line: 2}},
		},
		{
			name:   "lines inside strings and comments are counted",
			script: "SELECT 'a\nb';\n/* c\nd */ SELECT 3;",
			want:   []sqlscript.Statement{{SQL: "SELECT 'a\nb'", Line: 1}, {SQL: "SELECT 3", Line: 4}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sqlscript.Split(tt.script)
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Split =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func TestSplitRejectsUnterminatedText(t *testing.T) {
	tests := []struct {
		name, script string
		line         int
		msg          string
	}{
		{"an open string names the line it starts on", "SELECT 1;\nSELECT 'abc;\nSELECT 2;", 2, "'-quoted"},
		{"an open quoted identifier is an error", "SELECT `abc", 1, "`-quoted"},
		{"an escaped closing quote does not close the string", `SELECT 'abc\'`, 1, "'-quoted"},
		{"an open block comment is an error", "SELECT 1;\n\n/* never closed", 3, "comment"},
		{"DELIMITER needs a delimiter", "DELIMITER   \nSELECT 1", 1, "DELIMITER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sqlscript.Split(tt.script)
			var syn *sqlscript.SyntaxError
			if !errors.As(err, &syn) {
				t.Fatalf("Split error = %v, want a *SyntaxError", err)
			}
			if syn.Line != tt.line || !strings.Contains(syn.Msg, tt.msg) {
				t.Errorf("error = %q (line %d), want line %d mentioning %q", err, syn.Line, tt.line, tt.msg)
			}
		})
	}
}

// The project's own scripts are what the splitter exists for: each must
// split into the statements a reader sees.
func TestSplitProjectScripts(t *testing.T) {
	t.Run("ordersdb-setup.sql keeps its quoted SIGNAL text in one statement", func(t *testing.T) {
		stmts, err := sqlscript.Split(etlsql.OrdersDBSetup)
		if err != nil {
			t.Fatal(err)
		}
		// The password guard comes before anything changes: only the
		// session's sql_mode (taking NO_BACKSLASH_ESCAPES out) precedes it.
		guard := -1
		for i, st := range stmts {
			if strings.HasPrefix(st.SQL, "SET @dms_password = NULLIF(@dms_password, '')") {
				guard = i
				break
			}
			if !strings.HasPrefix(st.SQL, "SET @etl_saved_sql_mode = ") && !strings.HasPrefix(st.SQL, "SET SESSION sql_mode = ") {
				t.Errorf("statement %q runs before the password guard", st.SQL)
			}
		}
		if guard < 0 || guard > 2 {
			t.Errorf("password guard is statement %d, want one of the first three", guard)
		}
		var check string
		for _, st := range stmts {
			if strings.HasPrefix(st.SQL, "SET @dms_password_check") {
				check = st.SQL
			}
			if strings.HasPrefix(st.SQL, "--") || strings.Contains(st.SQL, "\n--") {
				t.Errorf("statement at line %d still holds a comment: %q", st.Line, st.SQL)
			}
		}
		if !strings.Contains(check, "SET MESSAGE_TEXT = ''Set @dms_password before running ordersdb-setup.sql (nothing was changed; the session stays read-only until then)''") || !strings.HasSuffix(check, "ELSE 'DO 0' END") {
			t.Errorf("password check statement was cut: %q", check)
		}
	})
	for name, script := range map[string]string{
		"orders-data-setup.sql": etlsql.OrdersDataSetup,
	} {
		t.Run(name+" splits into statements that each end where a semicolon ends a line", func(t *testing.T) {
			stmts, err := sqlscript.Split(script)
			if err != nil {
				t.Fatal(err)
			}
			if len(stmts) == 0 {
				t.Fatal("no statements")
			}
			for _, st := range stmts {
				if strings.HasSuffix(st.SQL, ";") {
					t.Errorf("statement at line %d kept its delimiter", st.Line)
				}
			}
		})
	}
}

type recorder struct {
	ran    []string
	failAt int // 1-based statement number that fails; 0 never
}

func (r *recorder) ExecContext(_ context.Context, query string, _ ...any) (sql.Result, error) {
	r.ran = append(r.ran, query)
	if len(r.ran) == r.failAt {
		return nil, errBoom
	}
	return nil, nil
}

var errBoom = errors.New("boom")

func TestRun(t *testing.T) {
	script := "CREATE TABLE a (x INT);\n\n-- then\nINSERT INTO a VALUES (1);\nINSERT INTO a VALUES (2);\n"

	t.Run("runs every statement in order", func(t *testing.T) {
		r := &recorder{}
		n, err := sqlscript.Run(context.Background(), r, "a.sql", script)
		if err != nil || n != 3 {
			t.Fatalf("Run = %d, %v; want 3, nil", n, err)
		}
		want := []string{"CREATE TABLE a (x INT)", "INSERT INTO a VALUES (1)", "INSERT INTO a VALUES (2)"}
		if !reflect.DeepEqual(r.ran, want) {
			t.Errorf("ran %q, want %q", r.ran, want)
		}
	})
	t.Run("stops at the first failure and names the script and line", func(t *testing.T) {
		r := &recorder{failAt: 2}
		n, err := sqlscript.Run(context.Background(), r, "a.sql", script)
		if n != 1 || !errors.Is(err, errBoom) || !strings.HasPrefix(err.Error(), "a.sql:4: ") {
			t.Fatalf("Run = %d, %v; want 1 and an error starting a.sql:4: wrapping boom", n, err)
		}
		if len(r.ran) != 2 {
			t.Errorf("ran %d statements after the failure, want none", len(r.ran)-2)
		}
	})
	t.Run("a script that cannot be split runs nothing", func(t *testing.T) {
		r := &recorder{}
		_, err := sqlscript.Run(context.Background(), r, "a.sql", "SELECT 1;\nSELECT 'open")
		var syn *sqlscript.SyntaxError
		if !errors.As(err, &syn) || !strings.HasPrefix(err.Error(), "a.sql: line 2:") {
			t.Fatalf("Run error = %v, want a.sql: line 2: syntax error", err)
		}
		if len(r.ran) != 0 {
			t.Errorf("ran %q before reporting the syntax error", r.ran)
		}
	})
}

// FuzzSplit checks that any input either splits or reports a syntax error,
// and that statements come out trimmed, non-empty and in line order; and
// that scripts joined from plain statements split back into them.
func FuzzSplit(f *testing.F) {
	f.Add(etlsql.OrdersDBSetup)
	f.Add("DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT ';'; END//\nDELIMITER ;\nCALL p();")
	f.Add("SELECT 'a\\'b', `c``d`, \"e\"\"f\" -- x\n; # y\n/* z */ /*! 1 */")
	f.Fuzz(func(t *testing.T, script string) {
		stmts, err := sqlscript.Split(script)
		if err != nil {
			var syn *sqlscript.SyntaxError
			if !errors.As(err, &syn) {
				t.Fatalf("error %v is not a *SyntaxError", err)
			}
			return
		}
		last := 0
		for _, st := range stmts {
			if st.SQL == "" || st.SQL != strings.TrimSpace(st.SQL) {
				t.Fatalf("statement %q is empty or untrimmed", st.SQL)
			}
			if st.Line < last || st.Line < 1 || st.Line > strings.Count(script, "\n")+1 {
				t.Fatalf("line %d out of order or range (previous %d)", st.Line, last)
			}
			last = st.Line
		}
		// A script of plain words (no quotes, comments or delimiters) and
		// newlines, joined with ";", splits back into its parts.
		plain := strings.Map(func(r rune) rune {
			if strings.ContainsRune(";'\"`#-/*\\", r) {
				return -1
			}
			return r
		}, script)
		var parts []string
		for _, p := range strings.Split(plain, "\n") {
			if p = strings.TrimSpace(p); p != "" && !strings.HasPrefix(strings.ToLower(p), "delimiter") {
				parts = append(parts, p)
			}
		}
		back, err := sqlscript.Split(strings.Join(parts, ";\n"))
		if err != nil {
			t.Fatalf("plain script: %v", err)
		}
		if len(back) != len(parts) {
			t.Fatalf("plain script of %d statements split into %d", len(parts), len(back))
		}
		for i := range parts {
			if back[i].SQL != parts[i] || back[i].Line != i+1 {
				t.Fatalf("statement %d = %+v, want %q on line %d", i, back[i], parts[i], i+1)
			}
		}
	})
}

func BenchmarkSplit(b *testing.B) {
	script := strings.Repeat(etlsql.OrdersDBSetup+"\n"+etlsql.OrdersDataSetup+"\n", 4)
	stmts, err := sqlscript.Split(script)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(script)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := sqlscript.Split(script); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(stmts))*float64(b.N)/b.Elapsed().Seconds(), "statements/s")
}

// MySQL 8.4 turns mysql_native_password off by default: where the server
// has caching_sha2_password, dms_user must be created (and re-keyed) with
// it; MariaDB, which has no such plugin, keeps its default (the local-mode
// tests log in as dms_user there).
func TestOrdersDBSetupCreatesTheDMSUserWithCachingSHA2WhereTheServerHasIt(t *testing.T) {
	stmts, err := sqlscript.Split(etlsql.OrdersDBSetup)
	if err != nil {
		t.Fatal(err)
	}
	var auth string
	users := 0
	for _, st := range stmts {
		switch {
		case strings.HasPrefix(st.SQL, "SET @dms_user_auth"):
			auth = st.SQL
		case strings.Contains(st.SQL, "USER IF NOT EXISTS ''dms_user''") || strings.Contains(st.SQL, "ALTER USER ''dms_user''"):
			users++
			if !strings.Contains(st.SQL, "@dms_user_auth") {
				t.Errorf("statement at line %d ignores the chosen plugin: %q", st.Line, st.SQL)
			}
		}
	}
	if users != 2 {
		t.Errorf("%d dms_user CREATE/ALTER statements, want 2", users)
	}
	for _, want := range []string{"information_schema.PLUGINS", "'caching_sha2_password'", "'IDENTIFIED WITH caching_sha2_password BY '", "'IDENTIFIED BY '"} {
		if !strings.Contains(auth, want) {
			t.Errorf("plugin choice %q lacks %s", auth, want)
		}
	}
}

// echoer fails every statement with a server syntax error that quotes the
// statement, as MySQL's "near '...'" messages do.
type echoer struct{}

func (echoer) ExecContext(_ context.Context, query string, _ ...any) (sql.Result, error) {
	return nil, &mysql.MySQLError{Number: 1064, SQLState: [5]byte{'4', '2', '0', '0', '0'}, Message: "syntax error near '" + query + "'"}
}

func TestExecWithWithholdsMessagesThatMayHoldASecret(t *testing.T) {
	ctx := context.Background()
	const secret = "s3cret-Pass"

	t.Run("a message that contains a secret keeps only the error number", func(t *testing.T) {
		stmts := []sqlscript.Statement{{SQL: "CREATE USER x IDENTIFIED BY '" + secret + "'", Line: 7}}
		_, err := sqlscript.ExecWith(ctx, echoer{}, "a.sql", stmts, sqlscript.Options{Secrets: []string{secret}})
		if !errors.Is(err, sqlscript.ErrWithheld) || strings.Contains(err.Error(), secret) {
			t.Fatalf("error %v: want ErrWithheld and no secret", err)
		}
		if want := "a.sql:7: MySQL error 1064 (SQLSTATE 42000): "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error %q does not start %q", err, want)
		}
	})
	t.Run("a sensitive statement's message is withheld even without the whole secret", func(t *testing.T) {
		stmts := []sqlscript.Statement{{SQL: "EXECUTE stmt_with_password", Line: 3}}
		opts := sqlscript.Options{Secrets: []string{secret}, Sensitive: func(st sqlscript.Statement) bool { return strings.Contains(st.SQL, "stmt_with_password") }}
		_, err := sqlscript.ExecWith(ctx, echoer{}, "a.sql", stmts, opts)
		if !errors.Is(err, sqlscript.ErrWithheld) || strings.Contains(err.Error(), "stmt_with_password") {
			t.Fatalf("error %v: want ErrWithheld without the statement", err)
		}
	})
	t.Run("other errors pass through whole", func(t *testing.T) {
		stmts := []sqlscript.Statement{{SQL: "SELECT nothing", Line: 1}}
		_, err := sqlscript.ExecWith(ctx, echoer{}, "a.sql", stmts, sqlscript.Options{Secrets: []string{secret}})
		if errors.Is(err, sqlscript.ErrWithheld) || !strings.Contains(err.Error(), "SELECT nothing") {
			t.Fatalf("error %v: want the server's message", err)
		}
	})
	t.Run("Withhold drops an error that carries the secret", func(t *testing.T) {
		err := sqlscript.Withhold("set @p", errors.New("bad value '"+secret+"'"), secret)
		if !errors.Is(err, sqlscript.ErrWithheld) || strings.Contains(err.Error(), secret) || !strings.HasPrefix(err.Error(), "set @p: ") {
			t.Fatalf("Withhold = %v", err)
		}
	})
}

func TestOrdersDBSetupStatementsThatHandleThePasswordAreSensitive(t *testing.T) {
	stmts, err := sqlscript.Split(etlsql.OrdersDBSetup)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, st := range stmts {
		// QUOTE(@dms_password) and the prepared statement built from it.
		if strings.Contains(st.SQL, "QUOTE(") || strings.Contains(st.SQL, "EXECUTE dms_user_stmt") || strings.Contains(st.SQL, "PREPARE dms_user_stmt") {
			n++
			if !etlsql.CarriesPassword(st.SQL) {
				t.Errorf("line %d is not reported as carrying the password: %s", st.Line, st.SQL)
			}
		}
		if strings.Contains(st.SQL, "EXECUTE dms_password_check_stmt") && etlsql.CarriesPassword(st.SQL) {
			t.Errorf("line %d, whose SIGNAL tells the operator what to do, would be withheld", st.Line)
		}
	}
	if n < 4 {
		t.Errorf("found %d statements that build or run the password statement, want at least 4", n)
	}
}
