package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	idemkey "github.com/idemkey/idemkey/client/go"
	"github.com/idemkey/idemkey/client/go/idemhttp"
	"github.com/idemkey/idemkey/client/go/internal/exampleapp"
)

// app is this example app; exampleapp gives it its flags and its life.
var app = exampleapp.App{
	Name:        "payments-http",
	Summary:     "a payments API protected by idemkey",
	Protocol:    "HTTP",
	DefaultPort: 8080,
	Serve:       serve,
}

// serve serves the app on ln until ctx ends, then stops after the requests
// in flight.
func serve(ctx context.Context, ln net.Listener, keys idemkey.KeyService, o exampleapp.Options, stderr io.Writer) error {
	srv := &http.Server{Handler: newHandler(keys, o, stderr), ReadHeaderTimeout: 10 * time.Second}
	return exampleapp.ServeUntil(ctx,
		func() error { return srv.Serve(ln) },
		func() error { return srv.Shutdown(context.Background()) })
}

// newHandler is the app: its routes behind the idemkey middleware, behind a
// recovery that answers 500 for a handler that panics. Panics are reported
// to logw.
func newHandler(keys idemkey.KeyService, o exampleapp.Options, logw io.Writer) http.Handler {
	opts := []idemhttp.Option{
		idemhttp.WithRequireKey(),
		idemhttp.WithExclude("POST /v1/auth/login"),
		idemhttp.WithNotFinalStatuses(http.StatusTooManyRequests, http.StatusServiceUnavailable),
		idemhttp.WithLease(o.Lease),
		idemhttp.WithWaitForResult(o.WaitForResult),
		// No header, no tenant (the request bypasses, or is refused with
		// --require_tenant); any org id maps to a valid tenant name.
		idemhttp.WithTenantFunc(func(r *http.Request) string {
			return idemkey.TenantNameFor(r.Header.Get("X-Org-Id"))
		}),
	}
	if o.FailOpen {
		opts = append(opts, idemhttp.WithFailOpen())
	}
	if o.RequireTenant {
		opts = append(opts, idemhttp.WithRequireTenant())
	}
	protect := idemhttp.Require(keys, opts...)

	var charges int64
	createCharge := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(o.ChargeDelay)
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
	return recovery(logw, mux)
}

// recovery answers 500 for a handler that panics (net/http would drop the
// connection), once the idemkey middleware has released its key.
func recovery(logw io.Writer, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				fmt.Fprintf(logw, "payments-http: %s %s panicked: %v\n", r.Method, r.URL.Path, p)
				http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}
