/** The client side of gRPC idempotency: a key on every call. */

import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";

/**
 * A grpc-js client interceptor that puts a random `idempotency-key` (a
 * UUID) on each call that has none. It runs above gRPC's own retries, so a
 * retried call resends the same key.
 *
 *   new PaymentsClient(addr, creds, { interceptors: [idempotencyKeyInterceptor] });
 */
export const idempotencyKeyInterceptor: grpc.Interceptor = (options, nextCall) =>
  new grpc.InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      if (metadata.get("idempotency-key").length === 0) {
        metadata.set("idempotency-key", randomUUID());
      }
      next(metadata, listener);
    },
  });
