/**
 * @idemkey/middleware: the Node.js client and middleware of idemkey.
 *
 * - `Client`: the KeyService client (retries, deadlines, auth, TLS).
 * - `idempotency(keys, options)`: Express middleware.
 * - `GrpcIdempotency`, `idempotencyKeyInterceptor`: gRPC server and client.
 * - `IdempotencyCore`: the framework-free decisions, for other adapters.
 * - `InMemoryKeyService`: the key service in memory, for apps' tests.
 * - `fingerprint`, `tenantNameFor`: the shared rules.
 */

export { Client, type ClientOptions, newAttemptId } from "./client";
export {
  IdempotencyCore,
  Execution,
  type CoreOptions,
  type Decision,
  type IncomingRequest,
  type Rejection,
  type RejectReason,
} from "./core";
export { parseDuration, toMillis, type DurationInput } from "./duration";
export { GrpcStatus, KeyServiceError, isNoAnswer } from "./errors";
export { idempotency, orgIdTenant, routeOf, type ExpressIdempotencyOptions } from "./express";
export { fingerprint } from "./fingerprint";
export { GrpcIdempotency, GRPC_STATUS, type GrpcIdempotencyOptions } from "./grpc-server";
export { idempotencyKeyInterceptor } from "./grpc-interceptor";
export { BODY_OMITTED_HEADER, REPLAYED_HEADER, ResponseCapture, sendStored } from "./http-response";
export { InMemoryKeyService, encodedSize, type InMemoryOptions } from "./in-memory";
export { EVENT_KINDS, type EventKind, type MiddlewareEvent, type Observer } from "./observer";
export { HTTP_STATUS, problemReply, type ProblemReply } from "./problem";
export { findProtoDir, loadIdemkeyV1 } from "./proto";
export { tenantNameFor } from "./tenant-name";
export * from "./types";
export { checkKey, checkTenantName } from "./validation";
