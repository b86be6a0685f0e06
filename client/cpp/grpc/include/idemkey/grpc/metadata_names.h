// metadata_names.h — gRPC metadata names shared by the idemkey gRPC adapters.
//
// The server wrapper (server_idempotency.h) reads kIdempotencyKeyMetadata;
// the client interceptor (client_idempotency_interceptor.h) writes it:
//
//   grpc::ClientContext ctx;
//   ctx.AddMetadata(idemkey::rpc::kIdempotencyKeyMetadata, "order-42");
//
// gRPC metadata names are lowercase. The adapters live in namespace
// idemkey::rpc, not idemkey::grpc, so that `grpc::...` still names gRPC in
// code inside namespace idemkey.

#ifndef IDEMKEY_GRPC_METADATA_NAMES_H_
#define IDEMKEY_GRPC_METADATA_NAMES_H_

namespace idemkey::rpc {

// The client's idempotency key (docs/semantics.md: 1-256 bytes of printable
// ASCII).
inline constexpr char kIdempotencyKeyMetadata[] = "idempotency-key";
// Initial metadata "true" on a replayed response.
inline constexpr char kReplayedMetadata[] = "idempotency-replayed";
// Initial metadata "true" on a replay whose response message was too large
// to store: the stored status with an empty message.
inline constexpr char kBodyOmittedMetadata[] = "idempotency-body-omitted";
// Trailing metadata of an ABORTED "in progress" answer: whole seconds after
// which a retry may find the first attempt finished.
inline constexpr char kRetryAfterMetadata[] = "retry-after";

}  // namespace idemkey::rpc

#endif  // IDEMKEY_GRPC_METADATA_NAMES_H_
