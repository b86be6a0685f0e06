package idemkey

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
)

// TLSCredentialsFromFiles returns TLS transport credentials for
// WithTransportCredentials from PEM files: caFile verifies idemkeyd's
// certificate (empty: the system's roots); certFile and keyFile (both or
// neither) are this client's certificate for mutual TLS. Errors name the
// file that cannot be used.
func TLSCredentialsFromFiles(caFile, certFile, keyFile string) (credentials.TransportCredentials, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("idemkey: reading the CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("idemkey: %s holds no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("idemkey: a client certificate needs both its certificate and its key file")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("idemkey: loading the client certificate %s: %w", certFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(cfg), nil
}

// TokenFromFile returns a token provider for WithTokenProvider that reads
// the token from path (surrounding white space dropped), again whenever the
// file's modification time changes, so that an operator rotates a token by
// renaming a new file over the old. A file that cannot be read gives the
// last token read (empty before the first).
func TokenFromFile(path string) func() string {
	var (
		mu    sync.Mutex
		token string
		mtime time.Time
		size  int64 = -1
	)
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		fi, err := os.Stat(path)
		if err != nil || (fi.ModTime().Equal(mtime) && fi.Size() == size) {
			return token
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return token
		}
		token, mtime, size = string(bytes.TrimSpace(b)), fi.ModTime(), fi.Size()
		return token
	}
}
