package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	idemkey "github.com/idemkey/idemkey/client/go"
	"github.com/idemkey/idemkey/client/go/cmd/payments-grpc/paymentspb"
	"github.com/idemkey/idemkey/client/go/idemtest"
	"github.com/idemkey/idemkey/client/go/internal/exampleapp"
	"github.com/idemkey/idemkey/client/go/internal/testenv"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
)

// dial connects to the app at addr; dialer, when not nil, makes the
// connection (bufconn).
func dial(t *testing.T, addr string, dialer func(context.Context, string) (net.Conn, error)) paymentspb.PaymentsClient {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithInsecure()}
	if dialer != nil {
		opts = append(opts, grpc.WithContextDialer(dialer))
	}
	conn, err := grpc.DialContext(context.Background(), addr, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return paymentspb.NewPaymentsClient(conn)
}

// startInMemory serves the app over bufconn, with keys.
func startInMemory(t *testing.T, keys *idemtest.Service, o exampleapp.Options) paymentspb.PaymentsClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := newServer(keys, o, io.Discard)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return dial(t, "bufnet", func(context.Context, string) (net.Conn, error) { return lis.Dial() })
}

// startApp runs the app as main does, with args and a free port, until the
// test ends; then it must stop cleanly.
func startApp(t *testing.T, args ...string) paymentspb.PaymentsClient {
	t.Helper()
	dir := t.TempDir()
	portFile := filepath.Join(dir, "port")
	logFile, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	args = append([]string{"--listen_port=0", "--port_file=" + portFile}, args...)
	go func() { done <- app.Run(ctx, args, func(string) string { return "" }, logFile) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		logFile.Close()
		if log, _ := os.ReadFile(logFile.Name()); !strings.Contains(string(log), "payments-grpc stopped") {
			t.Errorf("the app did not stop cleanly: %s", log)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(portFile); err == nil {
			return dial(t, "127.0.0.1:"+strings.TrimSpace(string(b)), nil)
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("the app exited before listening: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the app wrote no port file within 10s")
		}
	}
}

type reply struct {
	charge  *paymentspb.Charge
	err     error
	header  metadata.MD
	trailer metadata.MD
}

// charge calls CreateCharge as org "Acme Corp", with key (none when "") and
// the metadata pairs md.
func charge(t *testing.T, c paymentspb.PaymentsClient, key string, amount int64, md ...string) reply {
	t.Helper()
	ctx := metadata.AppendToOutgoingContext(context.Background(), append([]string{"x-org-id", "Acme Corp"}, md...)...)
	if key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "idempotency-key", key)
	}
	var r reply
	req := &paymentspb.CreateChargeRequest{Amount: amount, Currency: "EUR", Description: "coffee"}
	r.charge, r.err = c.CreateCharge(ctx, req, grpc.Header(&r.header), grpc.Trailer(&r.trailer))
	return r
}

// wantCharge checks that r is charge id, with its x-charge-id, replayed or
// not.
func wantCharge(t *testing.T, what string, r reply, id string, replayed bool) {
	t.Helper()
	if r.err != nil || r.charge.GetId() != id || r.charge.GetAmount() != 5 || r.charge.GetCurrency() != "EUR" || r.charge.GetDescription() != "coffee" {
		t.Fatalf("%s: %v %v, want %s", what, r.charge, r.err, id)
	}
	if got := r.header.Get("x-charge-id"); len(got) != 1 || got[0] != id {
		t.Fatalf("%s: x-charge-id %v, want %s", what, r.header, id)
	}
	if got := r.header.Get("idempotency-replayed"); replayed != (len(got) == 1 && got[0] == "true") {
		t.Fatalf("%s: idempotency-replayed %v, want it %v", what, got, replayed)
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// wantCode checks r's code and, when not "", its message.
func wantCode(t *testing.T, what string, r reply, code codes.Code, message string) {
	t.Helper()
	if st := status.Convert(r.err); st.Code() != code || (message != "" && st.Message() != message) {
		t.Fatalf("%s: %v, want %v %q", what, r.err, code, message)
	}
}

func TestCreateCharge(t *testing.T) {
	c := startInMemory(t, idemtest.New(), exampleapp.Options{Lease: 30 * time.Second})
	first := charge(t, c, "k", 5)
	wantCharge(t, "first", first, "ch_1", false)
	second := charge(t, c, "k", 5)
	wantCharge(t, "retry", second, "ch_1", true)
	if !proto.Equal(first.charge, second.charge) {
		t.Fatalf("replayed %v, first %v", second.charge, first.charge)
	}
	wantCharge(t, "another key", charge(t, c, "k2", 5), "ch_2", false)
	wantCode(t, "another request", charge(t, c, "k", 6), codes.FailedPrecondition, "")
	wantCode(t, "no key", charge(t, c, "", 5), codes.InvalidArgument, "")

	wantCode(t, "amount 0", charge(t, c, "k0", 0), codes.InvalidArgument, "amount must be positive, not 0")
	r := charge(t, c, "k0", 0)
	wantCode(t, "amount 0, retried", r, codes.InvalidArgument, "amount must be positive, not 0")
	if got := r.header.Get("idempotency-replayed"); len(got) != 1 {
		t.Fatalf("the stored error was not replayed: %v", r.header)
	}
	wantCode(t, "negative", charge(t, c, "k-", -3), codes.InvalidArgument, "amount must be positive, not -3")

	wantCode(t, "x-fail: throw", charge(t, c, "kt", 5, "x-fail", "throw"), codes.Internal,
		"/idemkey.examples.Payments/CreateCharge failed: the charge failed (x-fail: throw)")
	// Released, and not counted: the retry runs and is the third charge.
	wantCharge(t, "retry after the throw", charge(t, c, "kt", 5), "ch_3", false)
}

func TestInProgress(t *testing.T) {
	keys := idemtest.New()
	c := startInMemory(t, keys, exampleapp.Options{Lease: 30 * time.Second, ChargeDelay: 500 * time.Millisecond})
	done := make(chan reply)
	go func() { done <- charge(t, c, "k", 5) }()
	for deadline := time.Now().Add(10 * time.Second); keys.Calls("Reserve") == 0; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no Reserve within 10s")
		}
	}
	r := charge(t, c, "k", 5)
	wantCode(t, "retry in flight", r, codes.Aborted, "")
	if got := r.trailer.Get("retry-after"); len(got) != 1 || atoi(got[0]) < 1 {
		t.Fatalf("retry-after %v", r.trailer)
	}
	wantCharge(t, "first", <-done, "ch_1", false)
}

func TestFailClosedAndOpen(t *testing.T) {
	// A port nothing listens on: idemkeyd gives no answer.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	absent := ln.Addr().String()
	ln.Close()
	wantCode(t, "fail closed", charge(t, startApp(t, "--idemkey="+absent), "k", 5), codes.Unavailable, "")
	wantCharge(t, "fail open", charge(t, startApp(t, "--idemkey="+absent, "--fail_open"), "k", 5), "ch_1", false)
}

// Two app processes over a real idemkeyd: a call executed by one is
// replayed by the other, the same charge and metadata.
func TestWithDaemon(t *testing.T) {
	d := testenv.StartDaemon(t)
	a := startApp(t, "--idemkey="+d.Addr)
	b := startApp(t, "--idemkey="+d.Addr)
	key := "daemon-" + idemkey.NewAttemptID()
	first := charge(t, a, key, 5)
	wantCharge(t, "first, by a", first, "ch_1", false)
	wantCharge(t, "another key, by a", charge(t, a, key+"-2", 5), "ch_2", false)
	replayed := charge(t, b, key, 5)
	wantCharge(t, "retry, by b", replayed, "ch_1", true)
	if !proto.Equal(first.charge, replayed.charge) {
		t.Fatalf("replayed %v, first %v", replayed.charge, first.charge)
	}
	wantCode(t, "another request, by b", charge(t, b, key, 6), codes.FailedPrecondition, "")
	wantCode(t, "amount 0, by a", charge(t, a, key+"-0", 0), codes.InvalidArgument, "amount must be positive, not 0")
	wantCode(t, "amount 0, by b", charge(t, b, key+"-0", 0), codes.InvalidArgument, "amount must be positive, not 0")
	wantCode(t, "x-fail: throw, by a", charge(t, a, key+"-t", 5, "x-fail", "throw"), codes.Internal, "")
	wantCharge(t, "retry after the throw, by b", charge(t, b, key+"-t", 5), "ch_1", false)
}
