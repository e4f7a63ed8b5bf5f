// Command genproducts regenerates reference-data/products.json, the product
// catalogue the sample data and load generator reference:
//
//	go run ./cmd/genproducts > reference-data/products.json
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/unified-streaming-etl/etl/internal/refdata"
)

func main() {
	n := flag.Int("n", refdata.CatalogueSize, "number of products")
	flag.Parse()
	if err := refdata.Write(os.Stdout, refdata.Generate(*n)); err != nil {
		fmt.Fprintln(os.Stderr, "genproducts:", err)
		os.Exit(1)
	}
}
