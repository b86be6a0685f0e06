package exampleapp

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testApp = App{Name: "payments-test", Summary: "a test", Protocol: "HTTP", DefaultPort: 8080}

func TestFlags(t *testing.T) {
	o, err := parseFlags(testApp, []string{"--listen_port=0", "--lease=2s", "--fail_open", "--wait_for_result=1m30s", "--charge_delay=1500ms", "--require_tenant"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.ListenPort != 0 || o.Lease != 2*time.Second || !o.FailOpen || o.WaitForResult != 90*time.Second || o.ChargeDelay != 1500*time.Millisecond || !o.RequireTenant || o.Idemkey != "127.0.0.1:50051" || o.TokenEnv != "IDEMKEY_TOKEN" {
		t.Fatalf("%+v", o)
	}
	if o, err := parseFlags(testApp, nil, io.Discard); err != nil || o.ListenPort != 8080 || o.Lease != 30*time.Second || o.FailOpen || o.ChargeDelay != 0 {
		t.Fatalf("defaults: %+v %v", o, err)
	}
	if _, err := parseFlags(testApp, []string{"--lease=2"}, io.Discard); err == nil {
		t.Fatal("a duration without a unit was accepted")
	}
	if _, err := parseFlags(testApp, []string{"extra"}, io.Discard); err == nil {
		t.Fatal("an argument was accepted")
	}
}

func TestDialNeedsItsCACert(t *testing.T) {
	o := Options{Idemkey: "127.0.0.1:1", IdemkeyCACert: filepath.Join(t.TempDir(), "absent.pem")}
	if _, err := o.dial(context.Background(), func(string) string { return "" }); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
}

func TestListenWritesThePortFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "port")
	ln, err := Options{PortFile: path}.listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := os.ReadFile(path)
	want := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "\n"
	if err != nil || string(b) != want {
		t.Fatalf("port file %q (%v), want %q", b, err, want)
	}
	if m, _ := filepath.Glob(path + ".tmp*"); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

func TestRunHelp(t *testing.T) {
	var usage strings.Builder
	if err := testApp.Run(context.Background(), []string{"--help"}, os.Getenv, &usage); err != nil {
		t.Fatalf("--help: %v", err)
	}
	if !strings.HasPrefix(usage.String(), "payments-test: a test\nusage: payments-test [--listen_port=8080]") || !strings.Contains(usage.String(), "-charge_delay") {
		t.Fatalf("usage:\n%s", usage.String())
	}
}

func TestServeUntil(t *testing.T) {
	failed := errors.New("no port")
	if err := ServeUntil(context.Background(), func() error { return failed }, nil); !errors.Is(err, failed) {
		t.Fatalf("a failing serve: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stopped := make(chan struct{})
	serve := func() error { <-stopped; return nil }
	if err := ServeUntil(ctx, serve, func() error { close(stopped); return nil }); err != nil {
		t.Fatalf("stopped: %v", err)
	}
	if err := ServeUntil(ctx, serve, func() error { return failed }); !errors.Is(err, failed) {
		t.Fatalf("a failing stop: %v", err)
	}
}
