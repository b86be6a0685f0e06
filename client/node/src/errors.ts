/** Errors of the key service, carrying the gRPC status code. */

import { status as GrpcStatus } from "@grpc/grpc-js";

export { GrpcStatus };

/**
 * A key service call that was not applied: `code` is the gRPC status code
 * (docs/semantics.md, "Key service errors") and `details` the service's own
 * message (for operators; never shown to the app's clients).
 */
export class KeyServiceError extends Error {
  /** gRPC status code (grpc-js `status`). */
  readonly code: GrpcStatus;
  /** The message of the status, as the service (or gRPC) wrote it. */
  readonly details: string;

  constructor(code: GrpcStatus, details: string) {
    super(`${GrpcStatus[code] ?? code}: ${details}`);
    this.name = "KeyServiceError";
    this.code = code;
    this.details = details;
  }
}

/** The error's gRPC code, or UNKNOWN for anything that is not a status. */
export function codeOf(err: unknown): GrpcStatus {
  if (err instanceof KeyServiceError) return err.code;
  if (typeof err === "object" && err !== null && "code" in err) {
    const c = (err as { code: unknown }).code;
    if (typeof c === "number" && GrpcStatus[c] !== undefined) return c;
  }
  return GrpcStatus.UNKNOWN;
}

/** `err` as a KeyServiceError (a gRPC ServiceError or anything else). */
export function toKeyServiceError(err: unknown): KeyServiceError {
  if (err instanceof KeyServiceError) return err;
  const code = codeOf(err);
  let details = "";
  if (typeof err === "object" && err !== null && "details" in err) {
    details = String((err as { details: unknown }).details);
  } else if (err instanceof Error) {
    details = err.message;
  } else {
    details = String(err);
  }
  return new KeyServiceError(code, details);
}

/**
 * The statuses that mean the key service gave no answer (docs/semantics.md,
 * "What the app's clients see"): unreachable after the client's retries,
 * timed out, cancelled by a draining server, the connection lost or reset,
 * a request gRPC could not parse, a corrupt stored value.
 */
export function isNoAnswer(code: GrpcStatus): boolean {
  switch (code) {
    case GrpcStatus.UNAVAILABLE:
    case GrpcStatus.DEADLINE_EXCEEDED:
    case GrpcStatus.CANCELLED:
    case GrpcStatus.UNKNOWN:
    case GrpcStatus.INTERNAL:
    case GrpcStatus.UNIMPLEMENTED:
    case GrpcStatus.DATA_LOSS:
      return true;
    default:
      return false;
  }
}
