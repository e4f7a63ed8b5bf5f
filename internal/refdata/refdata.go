// Package refdata reads and generates the product reference data: JSON
// lines of {productId, productName, productPrice}, the format of
// reference-data/products.json and of the KDA "products" reference table.
package refdata

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/unified-streaming-etl/etl/internal/ddblimit"
	"github.com/unified-streaming-etl/etl/internal/order"
)

// Catalogue maps product ids to products.
type Catalogue map[int64]order.Product

// maxLine bounds one line of the file; a product line is tiny, so anything
// longer is a corrupt file, not a product. It is also what keeps a
// product's columns within their share of an enriched row.
const maxLine = order.MaxProductSize

// ErrEmpty is returned for a catalogue without a single product: a broken
// upload, which would strip every row of its product name and price.
var ErrEmpty = errors.New("the catalogue holds no products")

// Parse reads JSON lines. Blank lines are skipped; any other line that is
// not a product with an id, a name and a price DynamoDB can store is an
// error naming the line, and a file without products is ErrEmpty, so a
// broken upload is noticed instead of silently emptying the catalogue.
func Parse(r io.Reader) (Catalogue, error) {
	cat := Catalogue{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var p order.Product
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("products line %d: %w", line, err)
		}
		if p.ProductID <= 0 || p.ProductName == "" {
			return nil, fmt.Errorf("products line %d: productId and productName are required", line)
		}
		if err := ddblimit.CheckNumber(p.ProductPrice.String()); err != nil {
			return nil, fmt.Errorf("products line %d: productPrice %w", line, err)
		}
		if _, dup := cat[p.ProductID]; dup {
			return nil, fmt.Errorf("products line %d: productId %d appears twice", line, p.ProductID)
		}
		cat[p.ProductID] = p
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("products: %w", err)
	}
	if len(cat) == 0 {
		return nil, ErrEmpty
	}
	return cat, nil
}

// Write writes products as JSON lines in the order given.
func Write(w io.Writer, products []order.Product) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := range products {
		if err := enc.Encode(&products[i]); err != nil {
			return err
		}
	}
	return bw.Flush()
}
