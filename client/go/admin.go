package idemkey

import (
	"context"

	"github.com/idemkey/idemkey/client/go/idemkeypb"
	"google.golang.org/grpc"
)

// adminClient is the AdminService over a Client's connection, with its
// bearer token.
type adminClient struct{ c *Client }

// ListRecords calls AdminService.ListRecords with the client's token.
func (a adminClient) ListRecords(ctx context.Context, in *idemkeypb.ListRecordsRequest, opts ...grpc.CallOption) (*idemkeypb.ListRecordsResponse, error) {
	ctx, err := a.c.authorize(ctx)
	if err != nil {
		return nil, err
	}
	return a.c.admin.ListRecords(ctx, in, opts...)
}

// DeleteRecord calls AdminService.DeleteRecord with the client's token.
func (a adminClient) DeleteRecord(ctx context.Context, in *idemkeypb.DeleteRecordRequest, opts ...grpc.CallOption) (*idemkeypb.DeleteRecordResponse, error) {
	ctx, err := a.c.authorize(ctx)
	if err != nil {
		return nil, err
	}
	return a.c.admin.DeleteRecord(ctx, in, opts...)
}

// ListTenants calls AdminService.ListTenants with the client's token.
func (a adminClient) ListTenants(ctx context.Context, in *idemkeypb.ListTenantsRequest, opts ...grpc.CallOption) (*idemkeypb.ListTenantsResponse, error) {
	ctx, err := a.c.authorize(ctx)
	if err != nil {
		return nil, err
	}
	return a.c.admin.ListTenants(ctx, in, opts...)
}

// CreateTenant calls AdminService.CreateTenant with the client's token.
func (a adminClient) CreateTenant(ctx context.Context, in *idemkeypb.CreateTenantRequest, opts ...grpc.CallOption) (*idemkeypb.Tenant, error) {
	ctx, err := a.c.authorize(ctx)
	if err != nil {
		return nil, err
	}
	return a.c.admin.CreateTenant(ctx, in, opts...)
}

// DropTenant calls AdminService.DropTenant with the client's token.
func (a adminClient) DropTenant(ctx context.Context, in *idemkeypb.DropTenantRequest, opts ...grpc.CallOption) (*idemkeypb.DropTenantResponse, error) {
	ctx, err := a.c.authorize(ctx)
	if err != nil {
		return nil, err
	}
	return a.c.admin.DropTenant(ctx, in, opts...)
}

// GetStats calls AdminService.GetStats with the client's token.
func (a adminClient) GetStats(ctx context.Context, in *idemkeypb.GetStatsRequest, opts ...grpc.CallOption) (*idemkeypb.GetStatsResponse, error) {
	ctx, err := a.c.authorize(ctx)
	if err != nil {
		return nil, err
	}
	return a.c.admin.GetStats(ctx, in, opts...)
}

// Checkpoint calls AdminService.Checkpoint with the client's token.
func (a adminClient) Checkpoint(ctx context.Context, in *idemkeypb.CheckpointRequest, opts ...grpc.CallOption) (*idemkeypb.CheckpointResponse, error) {
	ctx, err := a.c.authorize(ctx)
	if err != nil {
		return nil, err
	}
	return a.c.admin.Checkpoint(ctx, in, opts...)
}

// Compact calls AdminService.Compact with the client's token.
func (a adminClient) Compact(ctx context.Context, in *idemkeypb.CompactRequest, opts ...grpc.CallOption) (*idemkeypb.CompactResponse, error) {
	ctx, err := a.c.authorize(ctx)
	if err != nil {
		return nil, err
	}
	return a.c.admin.Compact(ctx, in, opts...)
}
