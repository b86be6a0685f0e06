package idemgrpc

import (
	"context"

	idemkey "github.com/idemkey/idemkey/client/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// KeyMetadata is the metadata that carries the key.
const KeyMetadata = "idempotency-key"

// UnaryClientInterceptor puts a random idempotency-key on every call that
// has none. gRPC's own retries of that call, below the interceptor, resend
// the same key; a call the app makes again is a new request with a new key
// unless the app sets the key itself (metadata.AppendToOutgoingContext).
func UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply interface{}, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if md, _ := metadata.FromOutgoingContext(ctx); len(md.Get(KeyMetadata)) == 0 {
			ctx = metadata.AppendToOutgoingContext(ctx, KeyMetadata, idemkey.NewAttemptID())
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}
