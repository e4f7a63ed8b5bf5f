package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/unified-streaming-etl/etl/internal/local"
	"github.com/unified-streaming-etl/etl/internal/ops"
)

func init() {
	register(command{
		name:    "load",
		summary: "generate orders with items in the orders database, at a rate, to exercise the pipeline",
		run:     runLoad,
	})
}

const loadDescription = `
Commits --orders new orders with --items-per-order items each, one
transaction per order as an order service would, from --workers concurrent
sessions at --rate orders per second in total (0: as fast as they can).
Items are distinct products of the catalogue (--products), so each joins
with a product; order ids continue from the largest in the database. It
reports progress every few seconds and a summary at the end. The pipeline
then carries every item to OrderEnriched; etl verify --wait checks that it
did.

Needs the schema (etl db setup).
` + targetHelp

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, df := newDBFlagSet("load", "load [flags]", loadDescription, stderr)
	orders := fs.Int("orders", 1000, "orders to commit")
	items := fs.Int("items-per-order", 2, "items per order")
	rate := fs.Float64("rate", 10, "orders committed per second in total; 0 for as fast as possible")
	workers := fs.Int("workers", 4, "concurrent database sessions")
	firstID := fs.Int64("first-order-id", 0, "first orderId to use (default: one above the largest in the database)")
	products := fs.String("products", "", "product catalogue, JSON lines, the item ids are drawn from (default reference-data/products.json)")
	seed := fs.Uint64("seed", 1, "seed for the generated amounts and products")
	progressEvery := fs.Duration("progress", 5*time.Second, "how often to report progress")
	if err := df.parse(fs, args); err != nil {
		return err
	}
	if err := firstInvalid(fs,
		check{*orders < 1, fmt.Sprintf("--orders %d: want 1 or more", *orders)},
		check{*items < 1, fmt.Sprintf("--items-per-order %d: want 1 or more", *items)},
		check{*workers < 1, fmt.Sprintf("--workers %d: want 1 or more", *workers)},
		check{*rate < 0, fmt.Sprintf("--rate %g: want 0 (as fast as possible) or more", *rate)},
		check{*firstID < 0, fmt.Sprintf("--first-order-id %d: want 0 (after the largest) or more", *firstID)},
		check{*progressEvery <= 0, fmt.Sprintf("--progress %s: want a positive duration such as 5s", *progressEvery)},
	); err != nil {
		return err
	}

	catalogue := *products
	if catalogue == "" {
		p, err := defaultProducts()
		if err != nil {
			return err
		}
		catalogue = p
	}
	cat, err := ops.LoadProducts(ctx, catalogue, nil)
	if err != nil {
		return err
	}
	t, err := df.target(ctx, false)
	if err != nil {
		return err
	}
	// The generated values are no secret: interpolating them client-side
	// saves the prepare and close round trips per statement, which matter
	// through a port forward.
	t.Config.InterpolateParams = true
	fmt.Fprintf(stdout, "Database: %s\n", t.Description)
	db, err := t.Open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()

	pace := "as fast as possible"
	if *rate > 0 {
		pace = fmt.Sprintf("at %g orders/s", *rate)
	}
	fmt.Fprintf(stdout, "Committing %d orders x %d items = %d order items from %d sessions, %s ...\n",
		*orders, *items, *orders**items, *workers, pace)
	res, err := local.Load(ctx, db, local.LoadConfig{
		Orders: *orders, ItemsPerOrder: *items, Workers: *workers, Rate: *rate,
		FirstOrderID: *firstID, Products: ops.ProductIDs(cat), Seed: *seed,
		ProgressEvery: *progressEvery,
		Progress: func(p local.LoadProgress) {
			fmt.Fprintf(stdout, "  %5.0fs  %d/%d orders committed (%.1f orders/s)\n",
				p.Elapsed.Seconds(), p.Committed, p.Orders, float64(p.Committed)/p.Elapsed.Seconds())
		},
	})
	elapsed := res.Finished.Sub(res.Started)
	if err != nil {
		if res.Orders > 0 {
			fmt.Fprintf(stdout, "Stopped: %d orders with %d items committed (orderId from %d) in %s.\n",
				res.Orders, res.Items, res.FirstOrderID, human(elapsed))
		}
		return err
	}
	fmt.Fprintf(stdout, "Committed %d orders with %d items (orderId %d to %d) in %s: %.1f orders/s, %.1f items/s.\n",
		res.Orders, res.Items, res.FirstOrderID, res.LastOrderID, human(elapsed),
		float64(res.Orders)/elapsed.Seconds(), float64(res.Items)/elapsed.Seconds())
	return nil
}
