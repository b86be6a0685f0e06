package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	idemkey "github.com/idemkey/idemkey/client/go"
	"github.com/idemkey/idemkey/client/go/cmd/payments-grpc/paymentspb"
	"github.com/idemkey/idemkey/client/go/idemgrpc"
	"github.com/idemkey/idemkey/client/go/internal/exampleapp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// app is this example app; exampleapp gives it its flags and its life.
var app = exampleapp.App{
	Name:        "payments-grpc",
	Summary:     "a gRPC payments API protected by idemkey",
	Protocol:    "gRPC",
	DefaultPort: 50052,
	Serve:       serve,
}

// serve serves the app on ln until ctx ends, then stops after the calls in
// flight.
func serve(ctx context.Context, ln net.Listener, keys idemkey.KeyService, o exampleapp.Options, stderr io.Writer) error {
	srv := newServer(keys, o, stderr)
	return exampleapp.ServeUntil(ctx,
		func() error { return srv.Serve(ln) },
		func() error { srv.GracefulStop(); return nil })
}

// newServer is the app: the Payments service behind the idemkey
// interceptor, behind a recovery that answers INTERNAL for a handler that
// panics. Panics are reported to logw.
func newServer(keys idemkey.KeyService, o exampleapp.Options, logw io.Writer) *grpc.Server {
	// The gRPC defaults: every method covered, UNAVAILABLE and
	// RESOURCE_EXHAUSTED answers released rather than stored.
	opts := []idemgrpc.Option{
		idemgrpc.WithRequireKey(),
		idemgrpc.WithLease(o.Lease),
		idemgrpc.WithWaitForResult(o.WaitForResult),
		idemgrpc.WithTenantFunc(orgTenant),
	}
	if o.FailOpen {
		opts = append(opts, idemgrpc.WithFailOpen())
	}
	if o.RequireTenant {
		opts = append(opts, idemgrpc.WithRequireTenant())
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(recovery(logw), idemgrpc.UnaryServerInterceptor(keys, opts...)))
	paymentspb.RegisterPaymentsServer(srv, &payments{delay: o.ChargeDelay})
	return srv
}

// orgTenant is a call's tenant: its x-org-id metadata, mapped to a valid
// tenant name; none without it (the call bypasses, or is refused with
// --require_tenant).
func orgTenant(ctx context.Context, _ string) string {
	md, _ := metadata.FromIncomingContext(ctx)
	return idemkey.TenantNameFor(first(md, "x-org-id"))
}

// first is the first value of metadata name, "" without one.
func first(md metadata.MD, name string) string {
	if v := md.Get(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// payments is the Payments service. Its charges are numbered by this
// process, from 1.
type payments struct {
	paymentspb.UnimplementedPaymentsServer
	delay   time.Duration
	charges atomic.Int64
}

// CreateCharge answers as payments_grpc.cc does: a non-positive amount is
// refused at once; else the charge takes the delay, then panics with
// x-fail: throw, else is numbered and answered.
func (p *payments) CreateCharge(ctx context.Context, req *paymentspb.CreateChargeRequest) (*paymentspb.Charge, error) {
	if req.GetAmount() <= 0 {
		return nil, status.Errorf(codes.InvalidArgument, "amount must be positive, not %d", req.GetAmount())
	}
	time.Sleep(p.delay)
	md, _ := metadata.FromIncomingContext(ctx)
	if first(md, "x-fail") == "throw" {
		panic("the charge failed (x-fail: throw)")
	}
	id := fmt.Sprintf("ch_%d", p.charges.Add(1))
	// Set through the interceptor's stream: stored with the answer, and
	// replayed with it.
	if err := grpc.SetHeader(ctx, metadata.Pairs("x-charge-id", id)); err != nil {
		return nil, err
	}
	return &paymentspb.Charge{Id: id, Amount: req.GetAmount(), Currency: req.GetCurrency(), Description: req.GetDescription()}, nil
}

// recovery answers INTERNAL for a handler that panics (gRPC-Go would crash
// the process), once the idemkey interceptor inside has released its key.
// The message is the C++ adapter's: "<method> failed: <panic>".
func recovery(logw io.Writer) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req interface{}, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp interface{}, err error) {
		defer func() {
			if p := recover(); p != nil {
				fmt.Fprintf(logw, "payments-grpc: %s panicked: %v\n", info.FullMethod, p)
				err = status.Errorf(codes.Internal, "%s failed: %v", info.FullMethod, p)
			}
		}()
		return handler(ctx, req)
	}
}
