package local

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"time"

	"github.com/unified-streaming-etl/etl/internal/sqlscript"
)

// Commit is a source transaction the replayer committed: its GTID and the
// moment its COMMIT returned to the client.
type Commit struct {
	GTID string
	At   time.Time
}

// RunScript executes a script's statements in order on one connection,
// with autocommit, stopping at the first error. After each statement it
// reads @@last_gtid (MariaDB), so that every transaction the script
// commits is reported to onCommit with the time its commit returned; that
// is the commit time latency is measured from. setup statements run first
// on the same connection (for session variables the script needs).
func RunScript(ctx context.Context, db *sql.DB, path string, setup []string, onCommit func(Commit)) (int, error) {
	return runScript(ctx, db, path, setup, onCommit, nil)
}

// Step is one statement a script ran: where it starts, its text and how
// many rows it changed.
type Step struct {
	Line int
	SQL  string
	Rows int64
}

func runScript(ctx context.Context, db *sql.DB, path string, setup []string, onCommit func(Commit), onStep func(Step)) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	stmts, err := sqlscript.Split(string(b))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	for _, q := range setup {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
	}
	last, err := lastGTID(ctx, conn)
	if err != nil {
		return 0, err
	}
	for i, st := range stmts {
		res, err := conn.ExecContext(ctx, st.SQL)
		if err != nil {
			return i, fmt.Errorf("%s:%d: %w", path, st.Line, err)
		}
		at := time.Now()
		if onStep != nil {
			rows, _ := res.RowsAffected()
			onStep(Step{Line: st.Line, SQL: st.SQL, Rows: rows})
		}
		gtid, err := lastGTID(ctx, conn)
		if err != nil {
			return i, err
		}
		if gtid != last && gtid != "" {
			if onCommit != nil {
				onCommit(Commit{GTID: gtid, At: at})
			}
			last = gtid
		}
	}
	return len(stmts), nil
}

// lastGTID is the GTID of the session's last committed transaction.
func lastGTID(ctx context.Context, conn *sql.Conn) (string, error) {
	var gtid sql.NullString
	if err := conn.QueryRowContext(ctx, "SELECT @@last_gtid").Scan(&gtid); err != nil {
		return "", fmt.Errorf("read @@last_gtid: %w", err)
	}
	return gtid.String, nil
}
