// Package idemgrpc is idemkey's middleware for gRPC-Go: a unary server
// interceptor with the Idempotency-Key semantics of idemhttp, and a unary
// client interceptor that gives every call a key.
//
//	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(
//		auth, idemgrpc.UnaryServerInterceptor(keys, idemgrpc.WithRequireKey())))
//	conn, _ := grpc.Dial(addr, grpc.WithChainUnaryInterceptor(idemgrpc.UnaryClientInterceptor()))
//
// The key is the idempotency-key metadata. Every unary call is covered
// (method "grpc"), except the full method names given to WithExclude. The
// fingerprint covers the full method name and the request message's
// deterministic serialization. A replay answers the stored code, message,
// details, response message and reply metadata, plus initial metadata
// idempotency-replayed: true (docs/semantics.md, "gRPC replies").
//
// Reply metadata that the handler sets with grpc.SetHeader, grpc.SendHeader
// and grpc.SetTrailer is stored (as initial/<name> and trailing/<name>,
// names sorted) and replayed. Replays build the response message from the
// method's descriptor in protoregistry.GlobalFiles, where generated code
// registers it.
package idemgrpc
