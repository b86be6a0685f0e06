package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	idemkey "github.com/idemkey/idemkey/client/go"
	"github.com/idemkey/idemkey/client/go/idemhttp"
)

// run serves until ctx ends, then stops after the requests in flight.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	var copts []idemkey.ClientOption
	if o.idemkeyCACert != "" {
		creds, err := idemkey.TLSCredentialsFromFiles(o.idemkeyCACert, "", "")
		if err != nil {
			return err
		}
		copts = append(copts, idemkey.WithTransportCredentials(creds))
	}
	if token := getenv(o.tokenEnv); token != "" {
		copts = append(copts, idemkey.WithToken(token))
	}
	// One client (one connection) per process, shared by every request.
	keys, err := idemkey.Dial(ctx, o.idemkey, copts...)
	if err != nil {
		return err
	}
	defer keys.Close()

	handler := newHandler(keys, o)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.listenPort)))
	if err != nil {
		return fmt.Errorf("cannot listen on 127.0.0.1:%d: %w", o.listenPort, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if o.portFile != "" {
		if err := writePortFile(o.portFile, port); err != nil {
			ln.Close()
			return err
		}
	}
	fmt.Fprintf(stderr, "payments-http listening on 127.0.0.1:%d, idemkeyd at %s\n", port, o.idemkey)
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	// After the requests in flight.
	if err := srv.Shutdown(context.Background()); err != nil {
		return fmt.Errorf("stopping: %w", err)
	}
	fmt.Fprintln(stderr, "payments-http stopped")
	return nil
}

// newHandler is the app: its routes behind the idemkey middleware, behind a
// recovery that answers 500 for a handler that panics.
func newHandler(keys idemkey.KeyService, o options) http.Handler {
	opts := []idemhttp.Option{
		idemhttp.WithRequireKey(),
		idemhttp.WithExclude("POST /v1/auth/login"),
		idemhttp.WithNotFinalStatuses(http.StatusTooManyRequests, http.StatusServiceUnavailable),
		idemhttp.WithLease(o.lease),
		idemhttp.WithWaitForResult(o.waitForResult),
		// No header, no tenant (the request bypasses, or is refused with
		// --require_tenant); any org id maps to a valid tenant name.
		idemhttp.WithTenantFunc(func(r *http.Request) string {
			return idemkey.TenantNameFor(r.Header.Get("X-Org-Id"))
		}),
	}
	if o.failOpen {
		opts = append(opts, idemhttp.WithFailOpen())
	}
	if o.requireTenant {
		opts = append(opts, idemhttp.WithRequireTenant())
	}
	protect := idemhttp.Require(keys, opts...)

	var charges int64
	createCharge := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(o.chargeDelay)
		if r.Header.Get("X-Fail") == "throw" {
			panic("charge failed (X-Fail: throw)")
		}
		body, _ := io.ReadAll(r.Body)
		n := atomic.AddInt64(&charges, 1)
		w.Header().Set("Location", fmt.Sprintf("/v1/charges/ch_%d", n))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "{\"id\":\"ch_%d\",\"request\":%s}\n", n, body)
	})
	protectedCharge := protect(createCharge)
	login := protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{\"token\":\"example\"}\n")
	}))

	mux := http.NewServeMux()
	mux.HandleFunc("/v1/charges", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			protectedCharge.ServeHTTP(w, r)
		case http.MethodGet:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, "{\"charges\":%d}\n", atomic.LoadInt64(&charges))
		default:
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	})
	mux.HandleFunc("/v1/auth/login", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		login.ServeHTTP(w, r)
	})
	return recovery(mux)
}

// recovery answers 500 for a handler that panics (net/http would drop the
// connection), once the idemkey middleware has released its key.
func recovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				fmt.Fprintf(os.Stderr, "payments-http: %s %s panicked: %v\n", r.Method, r.URL.Path, p)
				http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// writePortFile writes port and a newline to path atomically (a temporary
// file renamed over it).
func writePortFile(path string, port int) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing the port file: %w", err)
	}
	_, werr := fmt.Fprintf(tmp, "%d\n", port)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing the port file %s: %v %v", tmp.Name(), werr, cerr)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing the port file: %w", err)
	}
	return nil
}
