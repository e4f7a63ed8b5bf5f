package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// LoadConfig describes load generated on any MySQL-compatible orders
// database (MariaDB, MySQL, RDS): what `etl load` commits. It is Bench's
// generator without the local pipeline around it.
type LoadConfig struct {
	// Orders is the number of orders, each committed with ItemsPerOrder
	// items in one transaction.
	Orders, ItemsPerOrder int
	// Workers is the number of concurrent database sessions; default 4.
	Workers int
	// Rate is the target of orders committed per second across all
	// workers; 0 commits as fast as the workers can.
	Rate float64
	// FirstOrderID is the first generated orderId; default one above the
	// largest in the source when the load starts.
	FirstOrderID int64
	// Products are the product ids items are drawn from (the catalogue's,
	// so that every item joins with a product). Required.
	Products []int64
	// Seed makes the generated amounts and products repeatable.
	Seed uint64
	// Progress, when set, is called about every ProgressEvery (default 5 s)
	// while the load runs.
	Progress      func(LoadProgress)
	ProgressEvery time.Duration
	// OnCommit, when set, is called after each order's COMMIT returned, on
	// the session that committed it (at is when the COMMIT returned), so it
	// can ask the server about that transaction. An error stops the load.
	OnCommit func(ctx context.Context, conn *sql.Conn, orderID int64, at time.Time) error
}

// LoadProgress is a snapshot of a running load.
type LoadProgress struct {
	Elapsed           time.Duration
	Committed, Orders int
}

// LoadResult is what a load committed. After an error it describes the
// transactions committed before it.
type LoadResult struct {
	// Orders and Items are the committed orders and their items.
	Orders, Items int
	// FirstOrderID..LastOrderID is the range the generated ids were taken
	// from; after an error not every id in it was committed.
	FirstOrderID, LastOrderID int64
	// Started is when the load began, Finished when the last transaction
	// ended.
	Started, Finished time.Time
}

// Load commits generated orders with their items, one transaction per
// order, from cfg.Workers sessions of db at cfg.Rate. It stops at the first
// failed transaction (which is rolled back) or when ctx ends.
func Load(ctx context.Context, db *sql.DB, cfg LoadConfig) (LoadResult, error) {
	if cfg.Orders < 1 || cfg.ItemsPerOrder < 1 {
		return LoadResult{}, errors.New("load: orders and items per order must be at least 1")
	}
	if cfg.Rate < 0 {
		return LoadResult{}, errors.New("load: the rate must not be negative")
	}
	products := slices.Clone(cfg.Products)
	slices.Sort(products)
	products = slices.Compact(products)
	if len(products) < cfg.ItemsPerOrder {
		// Items of one order are distinct products (the key is orderId, itemId).
		return LoadResult{}, fmt.Errorf("load: %d items per order, but only %d products", cfg.ItemsPerOrder, len(products))
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	cfg.Workers = min(cfg.Workers, cfg.Orders)
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 5 * time.Second
	}
	if cfg.FirstOrderID == 0 {
		var maxID sql.NullInt64
		if err := db.QueryRowContext(ctx, "SELECT MAX(orderId) FROM orders.`order`").Scan(&maxID); err != nil {
			return LoadResult{}, fmt.Errorf("load: find the largest orderId: %w", err)
		}
		cfg.FirstOrderID = maxID.Int64 + 1
	}

	res := LoadResult{
		FirstOrderID: cfg.FirstOrderID,
		LastOrderID:  cfg.FirstOrderID + int64(cfg.Orders) - 1,
		Started:      time.Now(),
	}
	var next, committed atomic.Int64
	stop := startTicker(cfg.ProgressEvery, func() {
		if cfg.Progress != nil {
			cfg.Progress(LoadProgress{Elapsed: time.Since(res.Started), Committed: int(committed.Load()), Orders: cfg.Orders})
		}
	})
	// The first worker to fail cancels the others.
	g, gctx := errgroup.WithContext(ctx)
	for w := range cfg.Workers {
		g.Go(func() error {
			conn, err := db.Conn(gctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(w)))
			for {
				i := next.Add(1) - 1
				if i >= int64(cfg.Orders) {
					return nil
				}
				if cfg.Rate > 0 {
					due := res.Started.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						select {
						case <-time.After(d):
						case <-gctx.Done():
							return gctx.Err()
						}
					}
				}
				id := cfg.FirstOrderID + i
				if err := writeOrder(gctx, conn, rng, id, cfg.ItemsPerOrder, products); err != nil {
					return fmt.Errorf("order %d: %w", id, err)
				}
				if cfg.OnCommit != nil {
					if err := cfg.OnCommit(gctx, conn, id, time.Now()); err != nil {
						return fmt.Errorf("order %d: %w", id, err)
					}
				}
				committed.Add(1)
			}
		})
	}
	err := g.Wait()
	stop()
	res.Finished = time.Now()
	res.Orders = int(committed.Load())
	res.Items = res.Orders * cfg.ItemsPerOrder
	if err != nil {
		return res, fmt.Errorf("load: %w", err)
	}
	return res, nil
}

// startTicker calls fn every interval until the returned stop function is
// called; stop waits for a call in progress.
func startTicker(interval time.Duration, fn func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fn()
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// writeOrder commits one order and its items (distinct products drawn
// from products, with random quantities and amounts) in one transaction,
// as an order service would.
func writeOrder(ctx context.Context, conn *sql.Conn, rng *rand.Rand, orderID int64, items int, products []int64) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	amount := func() string { return fmt.Sprintf("%d.%02d", rng.IntN(2000), rng.IntN(100)) }
	if _, err := tx.ExecContext(ctx, "INSERT INTO orders.`order` (orderId, orderAmount, orderStatus, orderDateTime, "+
		"shipToName, shipToAddress, shipToCity, shipToState, shipToZip) VALUES (?, ?, 'PLACED', NOW(3), ?, ?, ?, ?, ?)",
		orderID, amount(), fmt.Sprintf("Customer %d", orderID), fmt.Sprintf("%d Main St", rng.IntN(999)+1),
		"Seattle", "WA", fmt.Sprintf("98%03d", rng.IntN(1000))); err != nil {
		return err
	}
	var q strings.Builder
	q.WriteString("INSERT INTO orders.order_item (orderId, itemId, itemQuantity, itemAmount, itemStatus) VALUES ")
	args := make([]any, 0, 4*items)
	picked := make([]int64, 0, items)
	for len(picked) < items {
		if id := products[rng.IntN(len(products))]; !slices.Contains(picked, id) {
			picked = append(picked, id)
		}
	}
	for k, id := range picked {
		if k > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, 'PLACED')")
		args = append(args, orderID, id, rng.IntN(5)+1, amount())
	}
	if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
		return err
	}
	return tx.Commit()
}
