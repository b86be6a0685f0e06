package main

import (
	"flag"
	"fmt"
	"io"
	"time"
)

// options are the command-line flags of tests/conformance/README.md.
type options struct {
	listenPort    int
	portFile      string
	idemkey       string
	idemkeyCACert string
	tokenEnv      string
	failOpen      bool
	lease         time.Duration
	requireTenant bool
	waitForResult time.Duration
	chargeDelay   time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("payments-http", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "payments-http: a payments API protected by idemkey")
		fmt.Fprintln(stderr, "usage: payments-http [--listen_port=8080] [--idemkey=HOST:PORT] [flags]")
		fs.PrintDefaults()
	}
	fs.IntVar(&o.listenPort, "listen_port", 8080, "HTTP port on 127.0.0.1 (0: any free port)")
	fs.StringVar(&o.portFile, "port_file", "", "once listening, write the bound HTTP port to this file (atomically)")
	fs.StringVar(&o.idemkey, "idemkey", "127.0.0.1:50051", "idemkeyd address")
	fs.StringVar(&o.idemkeyCACert, "idemkey_cacert", "", "talk TLS to idemkeyd, verifying it with this PEM CA bundle")
	fs.StringVar(&o.tokenEnv, "idemkey_token_env", "IDEMKEY_TOKEN", "environment variable holding the bearer token for idemkeyd (none when unset or empty)")
	fs.BoolVar(&o.failOpen, "fail_open", false, "run requests unprotected when idemkeyd gives no answer")
	fs.DurationVar(&o.lease, "lease", 30*time.Second, "lease of each request's key; renewed every third of it")
	fs.BoolVar(&o.requireTenant, "require_tenant", false, "refuse a covered request without X-Org-Id (401) instead of running it unprotected")
	fs.DurationVar(&o.waitForResult, "wait_for_result", 0, "a retry while the first request runs waits this long for its result")
	fs.DurationVar(&o.chargeDelay, "charge_delay", 0, "time each charge takes (to see 409s and leases)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, nil
}
