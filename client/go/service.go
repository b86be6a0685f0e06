package idemkey

import (
	"context"

	"github.com/idemkey/idemkey/client/go/idemkeypb"
)

// KeyService is the part of idemkeyd's KeyService that the middleware uses.
// Errors are gRPC status errors (status.Code gives the code); a Reserve's
// four outcomes are answers, not errors. *Client implements it over gRPC,
// idemtest.Service in memory. Implementations must be safe for concurrent
// use.
type KeyService interface {
	// Reserve claims (tenant, key) for one attempt, or says why it cannot.
	Reserve(ctx context.Context, req *idemkeypb.ReserveRequest) (*idemkeypb.ReserveResponse, error)
	// Complete stores the response of the attempt holding the lease.
	Complete(ctx context.Context, req *idemkeypb.CompleteRequest) (*idemkeypb.CompleteResponse, error)
	// Release forgets a reservation so that a retry runs the request.
	Release(ctx context.Context, req *idemkeypb.ReleaseRequest) (*idemkeypb.ReleaseResponse, error)
	// Heartbeat extends the lease of the attempt holding it.
	Heartbeat(ctx context.Context, req *idemkeypb.HeartbeatRequest) (*idemkeypb.HeartbeatResponse, error)
	// Lookup reads a record without changing it.
	Lookup(ctx context.Context, req *idemkeypb.LookupRequest) (*idemkeypb.LookupResponse, error)
}
