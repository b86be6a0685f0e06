// Package exampleapp is what the example apps cmd/payments-http and
// cmd/payments-grpc share, as client/cpp/examples/example_flags.cc is for
// the C++ ones: the flags of tests/conformance/README.md, the idemkeyd
// client they configure, the listener with its port file, and the life of
// the process (serve until SIGTERM or SIGINT, then stop after the requests
// in flight). Each app brings only its server.
package exampleapp

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	idemkey "github.com/idemkey/idemkey/client/go"
)

// App is an example app.
type App struct {
	Name        string // "payments-http"
	Summary     string // what it is, the first line of --help
	Protocol    string // what --listen_port serves: "HTTP", "gRPC"
	DefaultPort int    // of --listen_port
	// Serve serves on ln, protected with keys, until ctx ends; then it
	// stops after the requests in flight (ServeUntil does both). It reports
	// what it logs to stderr.
	Serve func(ctx context.Context, ln net.Listener, keys idemkey.KeyService, o Options, stderr io.Writer) error
}

// Options are the command-line flags of tests/conformance/README.md.
type Options struct {
	ListenPort    int
	PortFile      string
	Idemkey       string
	IdemkeyCACert string
	TokenEnv      string
	FailOpen      bool
	Lease         time.Duration
	RequireTenant bool
	WaitForResult time.Duration
	ChargeDelay   time.Duration
}

// Main is the app's main: Run with the process's arguments and environment
// until SIGTERM or SIGINT; exit 1 with Run's error.
func (a App) Main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := a.Run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", a.Name, err)
		os.Exit(1)
	}
}

// Run parses args (without the program name), connects to idemkeyd, listens
// and serves until ctx ends. getenv reads the token's variable.
func (a App) Run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	o, err := parseFlags(a, args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	// One client (one connection) per process, shared by every request.
	keys, err := o.dial(ctx, getenv)
	if err != nil {
		return err
	}
	defer keys.Close()
	ln, err := o.listen()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s listening on %s, idemkeyd at %s\n", a.Name, ln.Addr(), o.Idemkey)
	if err := a.Serve(ctx, ln, keys, o, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s stopped\n", a.Name)
	return nil
}

// ServeUntil runs serve until it fails or ctx ends; then stop, which makes
// serve return once the requests in flight are answered.
func ServeUntil(ctx context.Context, serve func() error, stop func() error) error {
	served := make(chan error, 1)
	go func() { served <- serve() }()
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	if err := stop(); err != nil {
		return fmt.Errorf("stopping: %w", err)
	}
	return nil
}

// parseFlags parses a's command line. --help prints the usage to stderr
// and returns flag.ErrHelp.
func parseFlags(a App, args []string, stderr io.Writer) (Options, error) {
	var o Options
	fs := flag.NewFlagSet(a.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s: %s\n", a.Name, a.Summary)
		fmt.Fprintf(stderr, "usage: %s [--listen_port=%d] [--idemkey=HOST:PORT] [flags]\n", a.Name, a.DefaultPort)
		fs.PrintDefaults()
	}
	fs.IntVar(&o.ListenPort, "listen_port", a.DefaultPort, a.Protocol+" port on 127.0.0.1 (0: any free port)")
	fs.StringVar(&o.PortFile, "port_file", "", "once listening, write the bound "+a.Protocol+" port to this file (atomically)")
	fs.StringVar(&o.Idemkey, "idemkey", "127.0.0.1:50051", "idemkeyd address")
	fs.StringVar(&o.IdemkeyCACert, "idemkey_cacert", "", "talk TLS to idemkeyd, verifying it with this PEM CA bundle")
	fs.StringVar(&o.TokenEnv, "idemkey_token_env", "IDEMKEY_TOKEN", "environment variable holding the bearer token for idemkeyd (none when unset or empty)")
	fs.BoolVar(&o.FailOpen, "fail_open", false, "run requests unprotected when idemkeyd gives no answer")
	fs.DurationVar(&o.Lease, "lease", 30*time.Second, "lease of each request's key; renewed every third of it")
	fs.BoolVar(&o.RequireTenant, "require_tenant", false, "refuse a request without an org id (HTTP 401, gRPC UNAUTHENTICATED) instead of running it unprotected")
	fs.DurationVar(&o.WaitForResult, "wait_for_result", 0, "a retry while the first request runs waits this long for its result")
	fs.DurationVar(&o.ChargeDelay, "charge_delay", 0, "time each charge takes (to see retries refused as in progress, and leases)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, nil
}

// dial returns the client of the idemkeyd of --idemkey: over TLS with
// --idemkey_cacert, with the bearer token in the environment variable
// --idemkey_token_env.
func (o Options) dial(ctx context.Context, getenv func(string) string) (*idemkey.Client, error) {
	var copts []idemkey.ClientOption
	if o.IdemkeyCACert != "" {
		creds, err := idemkey.TLSCredentialsFromFiles(o.IdemkeyCACert, "", "")
		if err != nil {
			return nil, err
		}
		copts = append(copts, idemkey.WithTransportCredentials(creds))
	}
	if token := getenv(o.TokenEnv); token != "" {
		copts = append(copts, idemkey.WithToken(token))
	}
	return idemkey.Dial(ctx, o.Idemkey, copts...)
}

// listen listens on 127.0.0.1:--listen_port and then, with --port_file,
// writes the bound port there: once the file exists, connections are
// accepted.
func (o Options) listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.ListenPort)))
	if err != nil {
		return nil, fmt.Errorf("cannot listen on 127.0.0.1:%d: %w", o.ListenPort, err)
	}
	if o.PortFile != "" {
		if err := writePortFile(o.PortFile, ln.Addr().(*net.TCPAddr).Port); err != nil {
			ln.Close()
			return nil, err
		}
	}
	return ln, nil
}

// writePortFile writes port and a newline to path atomically (a temporary
// file renamed over it), so that a reader never sees a partial number.
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
