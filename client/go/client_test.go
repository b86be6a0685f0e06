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
	"google.golang.org/grpc/status"
)

// flaky serves an idemtest.Service over gRPC, failing the first calls with
// a chosen code and recording each call's authorization metadata.
type flaky struct {
	mu     sync.Mutex
	fail   int
	code   codes.Code
	calls  int
	tokens []string
}

func (f *flaky) intercept(ctx context.Context, req interface{}, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (interface{}, error) {
	f.mu.Lock()
	f.calls++
	md, _ := metadata.FromIncomingContext(ctx)
	f.tokens = append(f.tokens, md.Get("authorization")...)
	failing := f.calls <= f.fail
	f.mu.Unlock()
	if failing {
		return nil, status.Error(f.code, "injected")
	}
	return handler(ctx, req)
}

func serve(t *testing.T, f *flaky) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(f.intercept))
	idemkeypb.RegisterKeyServiceServer(srv, idemtest.New())
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
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
