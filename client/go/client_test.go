package idemkey_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	idemkey "github.com/idemkey/idemkey/client/go"
	"github.com/idemkey/idemkey/client/go/idemkeypb"
	"github.com/idemkey/idemkey/client/go/idemtest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
)

// flaky serves an idemtest.Service over gRPC, failing the first calls with
// a chosen code and recording each call's authorization metadata. With
// arrived set, it instead tells arrived of each call and holds it until the
// call's context ends.
type flaky struct {
	mu      sync.Mutex
	fail    int
	code    codes.Code
	calls   int
	tokens  []string
	arrived chan struct{}
}

func (f *flaky) intercept(ctx context.Context, req interface{}, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (interface{}, error) {
	f.mu.Lock()
	f.calls++
	md, _ := metadata.FromIncomingContext(ctx)
	f.tokens = append(f.tokens, md.Get("authorization")...)
	failing := f.calls <= f.fail
	f.mu.Unlock()
	if f.arrived != nil {
		f.arrived <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if failing {
		return nil, status.Error(f.code, "injected")
	}
	return handler(ctx, req)
}

func serve(t *testing.T, f *flaky) string {
	addr, _ := startServer(t, f)
	return addr
}

// startServer is serve that also returns the server, to stop it early.
func startServer(t *testing.T, f *flaky) (string, *grpc.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(f.intercept))
	idemkeypb.RegisterKeyServiceServer(srv, idemtest.New())
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), srv
}

func dial(t *testing.T, addr string, opts ...idemkey.ClientOption) *idemkey.Client {
	t.Helper()
	c, err := idemkey.Dial(context.Background(), addr, opts...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func lookup(c *idemkey.Client) error {
	_, err := c.Lookup(context.Background(), &idemkeypb.LookupRequest{Tenant: "acme", Key: "k"})
	return err
}

func TestClientRetriesUnavailable(t *testing.T) {
	f := &flaky{fail: 3, code: codes.Unavailable}
	c := dial(t, serve(t, f), idemkey.WithRetries(4, time.Millisecond, 4*time.Millisecond), idemkey.WithToken("s3cret"))
	// The fourth attempt reaches the service: NOT_FOUND (no tenant yet).
	if err := lookup(c); status.Code(err) != codes.NotFound {
		t.Fatalf("Lookup: %v, want NOT_FOUND after 3 retried UNAVAILABLE", err)
	}
	if f.calls != 4 {
		t.Fatalf("%d calls, want 4", f.calls)
	}
	for _, tok := range f.tokens {
		if tok != "Bearer s3cret" {
			t.Fatalf("authorization %q", tok)
		}
	}
	if len(f.tokens) != 4 {
		t.Fatalf("%d calls carried the token, want 4", len(f.tokens))
	}
}

// A stopping idemkeyd cancels the calls it had received but not started:
// retried like UNAVAILABLE.
func TestClientRetriesCancelledFromTheServer(t *testing.T) {
	f := &flaky{fail: 2, code: codes.Canceled}
	c := dial(t, serve(t, f), idemkey.WithRetries(4, time.Millisecond, 4*time.Millisecond))
	if err := lookup(c); status.Code(err) != codes.NotFound {
		t.Fatalf("Lookup: %v, want NOT_FOUND after 2 retried CANCELLED", err)
	}
	if f.calls != 3 {
		t.Fatalf("%d calls, want 3", f.calls)
	}
}

func TestClientDoesNotRetryTheCallersCancellation(t *testing.T) {
	f := &flaky{arrived: make(chan struct{}, 4)}
	c := dial(t, serve(t, f), idemkey.WithRetries(4, time.Millisecond, time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-f.arrived
		cancel()
	}()
	_, err := c.Lookup(ctx, &idemkeypb.LookupRequest{Tenant: "acme", Key: "k"})
	if status.Code(err) != codes.Canceled {
		t.Fatalf("Lookup: %v, want CANCELLED", err)
	}
	if len(f.arrived) != 0 || f.calls != 1 {
		t.Fatalf("%d calls, want 1", f.calls)
	}
}

// A closed Client's calls fail CANCELLED at once, without backoff.
func TestClientDoesNotRetryAfterClose(t *testing.T) {
	f := &flaky{}
	c := dial(t, serve(t, f), idemkey.WithRetries(4, time.Minute, time.Minute))
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- lookup(c) }()
	select {
	case err := <-done:
		if status.Code(err) != codes.Canceled {
			t.Fatalf("Lookup: %v, want CANCELLED", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Lookup on a closed Client still retrying after 10s")
	}
}

// A target naming two replicas: both take calls, in turn; once one is
// gone, the other takes every call and none fails.
func TestClientSpreadsCallsOverReplicas(t *testing.T) {
	f1, f2 := &flaky{}, &flaky{}
	addr1, _ := startServer(t, f1)
	addr2, srv2 := startServer(t, f2)
	r := manual.NewBuilderWithScheme("idemkeytest")
	r.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: addr1}, {Addr: addr2}}})
	c := dial(t, r.Scheme()+":///replicas", idemkey.WithRetries(4, time.Millisecond, 4*time.Millisecond),
		idemkey.WithDialOptions(grpc.WithResolvers(r)))
	calls := func() (int, int) {
		f1.mu.Lock()
		defer f1.mu.Unlock()
		f2.mu.Lock()
		defer f2.mu.Unlock()
		return f1.calls, f2.calls
	}
	// Until both connections are up, the ones that are take every call.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := lookup(c); status.Code(err) != codes.NotFound {
			t.Fatalf("Lookup: %v, want NOT_FOUND", err)
		}
		if n1, n2 := calls(); n1 > 0 && n2 > 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("after 10s, calls %d and %d: one replica takes none", n1, n2)
		}
		time.Sleep(10 * time.Millisecond)
	}
	n1, n2 := calls()
	for i := 0; i < 10; i++ {
		if err := lookup(c); status.Code(err) != codes.NotFound {
			t.Fatalf("Lookup: %v, want NOT_FOUND", err)
		}
	}
	if m1, m2 := calls(); m1-n1 != 5 || m2-n2 != 5 {
		t.Fatalf("10 calls went %d and %d, want 5 and 5", m1-n1, m2-n2)
	}
	srv2.Stop()
	n1, n2 = calls()
	for i := 0; i < 10; i++ {
		if err := lookup(c); status.Code(err) != codes.NotFound {
			t.Fatalf("Lookup with one replica gone: %v, want NOT_FOUND", err)
		}
	}
	if m1, m2 := calls(); m1-n1 != 10 || m2 != n2 {
		t.Fatalf("with one replica gone, 10 calls went %d and %d, want 10 and 0", m1-n1, m2-n2)
	}
}

func TestClientGivesUpAfterMaxAttempts(t *testing.T) {
	f := &flaky{fail: 100, code: codes.Unavailable}
	c := dial(t, serve(t, f), idemkey.WithRetries(3, time.Millisecond, time.Millisecond))
	if err := lookup(c); status.Code(err) != codes.Unavailable {
		t.Fatalf("Lookup: %v, want UNAVAILABLE", err)
	}
	if f.calls != 3 {
		t.Fatalf("%d calls, want 3", f.calls)
	}
	if len(f.tokens) != 0 {
		t.Fatalf("a token was sent without one configured: %v", f.tokens)
	}
}

func TestClientDoesNotRetryVerdicts(t *testing.T) {
	f := &flaky{fail: 1, code: codes.PermissionDenied}
	c := dial(t, serve(t, f), idemkey.WithRetries(4, time.Millisecond, time.Millisecond))
	if err := lookup(c); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Lookup: %v, want PERMISSION_DENIED", err)
	}
	if f.calls != 1 {
		t.Fatalf("%d calls, want 1", f.calls)
	}
}

func TestClientTokenProviderIsAskedEachCall(t *testing.T) {
	f := &flaky{}
	n := 0
	var mu sync.Mutex
	c := dial(t, serve(t, f), idemkey.WithTokenProvider(func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n == 1 {
			return "old"
		}
		return "new"
	}))
	_ = lookup(c)
	_ = lookup(c)
	if len(f.tokens) != 2 || f.tokens[0] != "Bearer old" || f.tokens[1] != "Bearer new" {
		t.Fatalf("tokens %v, want [Bearer old, Bearer new]", f.tokens)
	}
}

func TestClientRefusesTokenWithNewline(t *testing.T) {
	f := &flaky{}
	c := dial(t, serve(t, f), idemkey.WithToken("bad\ntoken"))
	if err := lookup(c); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Lookup: %v, want INVALID_ARGUMENT", err)
	}
	if f.calls != 0 {
		t.Fatalf("the call went out")
	}
}

func TestClientUnreachableIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	c := dial(t, addr, idemkey.WithRetries(2, time.Millisecond, time.Millisecond))
	if err := c.Ping(context.Background()); status.Code(err) != codes.Unavailable {
		t.Fatalf("Ping: %v, want UNAVAILABLE", err)
	}
}
