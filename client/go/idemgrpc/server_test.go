package idemgrpc_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	idemkey "github.com/idemkey/idemkey/client/go"
	"github.com/idemkey/idemkey/client/go/idemgrpc"
	"github.com/idemkey/idemkey/client/go/idemkeypb"
	"github.com/idemkey/idemkey/client/go/idemtest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// appServer is the app under the interceptor: its Lookup method stands for
// any unary method. The request's Tenant field says how it answers.
type appServer struct {
	idemkeypb.UnimplementedKeyServiceServer
	runs    int64
	release chan struct{}
}

func (a *appServer) Lookup(ctx context.Context, req *idemkeypb.LookupRequest) (*idemkeypb.LookupResponse, error) {
	if a.release != nil {
		<-a.release
	}
	switch req.GetTenant() {
	case "panic":
		panic("handler failed")
	case "unavailable":
		atomic.AddInt64(&a.runs, 1)
		return nil, status.Error(codes.Unavailable, "try later")
	case "details":
		n := atomic.AddInt64(&a.runs, 1)
		st, _ := status.New(codes.NotFound, "no charge "+strconv.FormatInt(n, 10)).WithDetails(&errdetails.ErrorInfo{Reason: "GONE"})
		return nil, st.Err()
	}
	n := atomic.AddInt64(&a.runs, 1)
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-run", strconv.FormatInt(n, 10)))
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "t", "x-bin-bin", "\x00\x01"))
	return &idemkeypb.LookupResponse{Record: &idemkeypb.Record{Key: req.GetKey() + "#" + strconv.FormatInt(n, 10)}}, nil
}

type env struct {
	keys   *idemtest.Service
	app    *appServer
	client idemkeypb.KeyServiceClient
}

func start(t *testing.T, app *appServer, opts ...idemgrpc.Option) *env {
	t.Helper()
	keys := idemtest.New()
	lis := bufconn.Listen(1 << 20)
	opts = append([]idemgrpc.Option{idemgrpc.WithTenantFunc(func(ctx context.Context, _ string) string {
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get("x-org-id"); len(v) > 0 {
			return idemkey.TenantNameFor(v[0])
		}
		return ""
	})}, opts...)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(recoverPanics, idemgrpc.UnaryServerInterceptor(keys, opts...)))
	idemkeypb.RegisterKeyServiceServer(srv, app)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.DialContext(context.Background(), "bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.Dial() }),
		grpc.WithInsecure(), grpc.WithChainUnaryInterceptor(idemgrpc.UnaryClientInterceptor()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &env{keys: keys, app: app, client: idemkeypb.NewKeyServiceClient(conn)}
}

func recoverPanics(ctx context.Context, req interface{}, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp interface{}, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = status.Errorf(codes.Internal, "panic: %v", p)
		}
	}()
	return h(ctx, req)
}

type answer struct {
	resp    *idemkeypb.LookupResponse
	err     error
	header  metadata.MD
	trailer metadata.MD
}

func (e *env) call(t *testing.T, key, tenant, reqKey string) answer {
	t.Helper()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-org-id", "Acme Corp")
	if key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "idempotency-key", key)
	}
	var a answer
	a.resp, a.err = e.client.Lookup(ctx, &idemkeypb.LookupRequest{Tenant: tenant, Key: reqKey}, grpc.Header(&a.header), grpc.Trailer(&a.trailer))
	return a
}

func TestGrpcReplay(t *testing.T) {
	e := start(t, &appServer{})
	first := e.call(t, "k", "ok", "charge")
	second := e.call(t, "k", "ok", "charge")
	if first.err != nil || second.err != nil {
		t.Fatalf("errors %v, %v", first.err, second.err)
	}
	if first.resp.GetRecord().GetKey() != "charge#1" || second.resp.GetRecord().GetKey() != "charge#1" {
		t.Fatalf("responses %v, %v", first.resp, second.resp)
	}
	if got := second.header.Get("idempotency-replayed"); len(got) != 1 || got[0] != "true" {
		t.Fatalf("replay header %v", second.header)
	}
	if len(first.header.Get("idempotency-replayed")) != 0 {
		t.Fatalf("first marked replayed")
	}
	if got := second.header.Get("x-run"); len(got) != 1 || got[0] != "1" {
		t.Fatalf("replayed initial metadata %v", second.header)
	}
	if got := second.trailer.Get("x-trailer"); len(got) != 1 || got[0] != "t" {
		t.Fatalf("replayed trailing metadata %v", second.trailer)
	}
	if got := second.trailer.Get("x-bin-bin"); len(got) != 1 || got[0] != "\x00\x01" {
		t.Fatalf("replayed binary trailer %q", got)
	}
	if e.app.runs != 1 {
		t.Fatalf("runs %d", e.app.runs)
	}
	// Another request message with the key: FAILED_PRECONDITION.
	if a := e.call(t, "k", "ok", "other"); status.Code(a.err) != codes.FailedPrecondition {
		t.Fatalf("reuse: %v", a.err)
	}
}

func TestGrpcErrorWithDetailsIsReplayed(t *testing.T) {
	e := start(t, &appServer{})
	first := e.call(t, "k", "details", "x")
	second := e.call(t, "k", "details", "x")
	s1, s2 := status.Convert(first.err), status.Convert(second.err)
	if s1.Code() != codes.NotFound || s2.Code() != codes.NotFound || s1.Message() != s2.Message() || s2.Message() != "no charge 1" {
		t.Fatalf("first %v, second %v", s1, s2)
	}
	if d := s2.Details(); len(d) != 1 || d[0].(*errdetails.ErrorInfo).GetReason() != "GONE" {
		t.Fatalf("replayed details %v", d)
	}
}

func TestGrpcRejections(t *testing.T) {
	e := start(t, &appServer{}, idemgrpc.WithRequireKey(), idemgrpc.WithExclude("/idemkey.v1.KeyService/Ping"))
	// The client interceptor added a key: the call is protected.
	if a := e.call(t, "", "ok", "x"); a.err != nil {
		t.Fatalf("with a generated key: %v", a.err)
	}
	if e.keys.Calls("Reserve") != 1 {
		t.Fatalf("Reserve calls %d", e.keys.Calls("Reserve"))
	}
	if a := e.call(t, "a b", "ok", "x"); status.Code(a.err) != codes.InvalidArgument {
		t.Fatalf("malformed key: %v", a.err)
	}
	if _, err := e.client.Ping(context.Background(), &idemkeypb.PingRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("excluded Ping: %v", err) // bypassed, reaches the (unimplemented) handler
	}
	e.keys.SetFailure(status.Error(codes.Unavailable, "secret"))
	a := e.call(t, "k2", "ok", "x")
	if status.Code(a.err) != codes.Unavailable || strings.Contains(a.err.Error(), "secret") {
		t.Fatalf("no answer: %v", a.err)
	}
	e.keys.SetFailure(status.Error(codes.PermissionDenied, "secret"))
	if a := e.call(t, "k2", "ok", "x"); status.Code(a.err) != codes.Internal || strings.Contains(a.err.Error(), "secret") {
		t.Fatalf("refused: %v", a.err)
	}
}

func TestGrpcMissingTenant(t *testing.T) {
	e := start(t, &appServer{}, idemgrpc.WithRequireTenant(), idemgrpc.WithTenantFunc(func(context.Context, string) string { return "" }))
	if a := e.call(t, "k", "ok", "x"); status.Code(a.err) != codes.Unauthenticated {
		t.Fatalf("%v", a.err)
	}
}

func TestGrpcInProgress(t *testing.T) {
	app := &appServer{release: make(chan struct{})}
	e := start(t, app, idemgrpc.WithLease(10*time.Second))
	done := make(chan answer)
	go func() { done <- e.call(t, "k", "ok", "x") }()
	deadline := time.Now().Add(10 * time.Second)
	for e.keys.Calls("Reserve") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no Reserve within 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	a := e.call(t, "k", "ok", "x")
	if status.Code(a.err) != codes.Aborted {
		t.Fatalf("%v", a.err)
	}
	if got := a.trailer.Get("retry-after"); len(got) != 1 || got[0] == "0" {
		t.Fatalf("retry-after %v", a.trailer)
	}
	close(app.release)
	if first := <-done; first.err != nil {
		t.Fatalf("first: %v", first.err)
	}
}

func TestGrpcPanicAndNotFinalRelease(t *testing.T) {
	e := start(t, &appServer{})
	if a := e.call(t, "k", "panic", "x"); status.Code(a.err) != codes.Internal {
		t.Fatalf("panic: %v", a.err)
	}
	if a := e.call(t, "k2", "unavailable", "x"); status.Code(a.err) != codes.Unavailable {
		t.Fatalf("unavailable: %v", a.err)
	}
	if e.keys.Calls("Release") != 2 {
		t.Fatalf("Release calls %d, want 2", e.keys.Calls("Release"))
	}
	e.call(t, "k2", "unavailable", "x")
	if e.app.runs != 2 {
		t.Fatalf("runs %d: the released key did not run again", e.app.runs)
	}
}

func TestClientInterceptorKeepsGivenKey(t *testing.T) {
	var got []string
	invoker := func(ctx context.Context, method string, req, reply interface{}, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
		md, _ := metadata.FromOutgoingContext(ctx)
		got = md.Get("idempotency-key")
		return nil
	}
	ic := idemgrpc.UnaryClientInterceptor()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "idempotency-key", "mine")
	_ = ic(ctx, "/m", nil, nil, nil, invoker)
	if len(got) != 1 || got[0] != "mine" {
		t.Fatalf("key %v, want [mine]", got)
	}
	_ = ic(context.Background(), "/m", nil, nil, nil, invoker)
	if len(got) != 1 || len(got[0]) != 36 {
		t.Fatalf("generated key %v", got)
	}
}
