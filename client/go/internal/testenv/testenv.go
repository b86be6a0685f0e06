// Package testenv finds the repository's files and starts a real idemkeyd
// for the module's integration tests.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RepoRoot returns the repository's root: the nearest directory above the
// working directory that holds proto/idemkey/v1/idemkey.proto.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "proto", "idemkey", "v1", "idemkey.proto")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no repository root (with proto/idemkey/v1/idemkey.proto) above the working directory")
		}
		dir = parent
	}
}

// ReadRepoFile returns the bytes of path, relative to the repository root.
func ReadRepoFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(t), path))
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return b
}

// Daemon is a running idemkeyd.
type Daemon struct {
	// Addr is its gRPC address, 127.0.0.1:PORT.
	Addr string
	cmd  *exec.Cmd
	log  string // its stdout and stderr
}

// Binary returns the idemkeyd to test: $IDEMKEYD, else
// build/server/daemon/idemkeyd under the repository root; "" when absent.
func Binary(t testing.TB) string {
	t.Helper()
	path := os.Getenv("IDEMKEYD")
	if path == "" {
		path = filepath.Join(RepoRoot(t), "build", "server", "daemon", "idemkeyd")
	} else if !filepath.IsAbs(path) {
		path = filepath.Join(RepoRoot(t), path)
	}
	if fi, err := os.Stat(path); err != nil || fi.IsDir() {
		return ""
	}
	return path
}

// StartDaemon starts idemkeyd on a free loopback port with a fresh data
// directory, waits until it serves, and stops it (SIGTERM) when the test
// ends. It skips the test when the binary is absent.
func StartDaemon(t testing.TB, extraArgs ...string) *Daemon {
	t.Helper()
	bin := Binary(t)
	if bin == "" {
		t.Skipf("idemkeyd not found (set IDEMKEYD or build build/server/daemon/idemkeyd): skipping the integration test")
	}
	dir := t.TempDir()
	portFile := filepath.Join(dir, "port")
	args := append([]string{"--listen=127.0.0.1:0", "--data_dir=" + filepath.Join(dir, "data"), "--port_file=" + portFile}, extraArgs...)
	d := &Daemon{cmd: exec.Command(bin, args...), log: filepath.Join(dir, "idemkeyd.log")}
	logFile, err := os.Create(d.log)
	if err != nil {
		t.Fatalf("creating the log file: %v", err)
	}
	defer logFile.Close()
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = d.cmd.Process.Kill()
			<-exited
			t.Errorf("idemkeyd did not stop within 20s of SIGTERM")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(portFile); err == nil {
			if port := strings.TrimSpace(string(b)); port != "" {
				d.Addr = "127.0.0.1:" + port
				return d
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("idemkeyd exited before serving (%v): %s", err, d.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("idemkeyd wrote no port file within 30s: %s", d.Log())
		}
	}
}

// Log returns what idemkeyd printed so far.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.log)
	return string(b)
}
