package ops

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/unified-streaming-etl/etl/internal/enrich"
	"github.com/unified-streaming-etl/etl/internal/refdata"
)

// ProductsFile is the product catalogue in the repository.
const ProductsFile = "reference-data/products.json"

// LoadProducts reads the product catalogue from a file path or an
// s3://bucket/key URI, with the loader the enrich function uses (client
// is needed for S3 only).
func LoadProducts(ctx context.Context, location string, client enrich.ObjectGetter) (refdata.Catalogue, error) {
	uri := location
	if !strings.HasPrefix(location, "s3://") {
		abs, err := filepath.Abs(location)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("product catalogue: %w", err)
		}
		uri = "file://" + filepath.ToSlash(abs)
	}
	ref, err := enrich.NewReference(uri, client, enrich.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return nil, err
	}
	cat, err := ref.Catalogue(ctx)
	if err != nil {
		return nil, err
	}
	if len(cat) == 0 {
		return nil, fmt.Errorf("product catalogue %s is empty", location)
	}
	return cat, nil
}

// ProductIDs returns the catalogue's product ids in order.
func ProductIDs(cat refdata.Catalogue) []int64 {
	ids := make([]int64, 0, len(cat))
	for id := range cat {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
