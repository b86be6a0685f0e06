/**
 * The KeyService's messages as plain TypeScript values (idemkey.v1, see
 * proto/idemkey/v1/idemkey.proto). Times are Dates, durations milliseconds,
 * fencing tokens bigints (uint64).
 */

/** One header (HTTP) or metadata entry (gRPC) of a stored response. */
export interface StoredHeader {
  /** Name as the application sent it (case kept). */
  name: string;
  /** Value bytes. */
  value: Buffer;
}

/** A response as the application server sent it. */
export interface StoredResponse {
  /** HTTP status, or gRPC status code. */
  statusCode: number;
  /** Headers in the order they were sent; names may repeat. */
  headers: StoredHeader[];
  /** Body (HTTP) or serialized response message (gRPC). */
  body: Buffer;
  /** The body (and maybe the headers) were too large to store. */
  bodyOmitted: boolean;
}

/** Reserve's four outcomes. */
export type Outcome = "OWNER" | "IN_PROGRESS" | "COMPLETED" | "MISMATCH";

/** A record's state. */
export type RecordState = "IN_PROGRESS" | "COMPLETED";

export interface ReserveRequest {
  tenant: string;
  key: string;
  /** Exactly 32 bytes (fingerprint()). */
  fingerprint: Buffer;
  /** Unique per attempt (a UUID); a retried Reserve keeps it. */
  attemptId: string;
  /** Lease in milliseconds; 0 or unset: the service's default (30 s). */
  leaseMs?: number;
  /** Retention after completion in milliseconds; 0 or unset: default. */
  ttlMs?: number;
}

export interface ReserveResponse {
  outcome: Outcome;
  /** OWNER: the token to pass to Complete, Release and Heartbeat. */
  fencingToken: bigint;
  /** OWNER and IN_PROGRESS: when the current lease lapses. */
  leaseExpiresAt?: Date;
  /** COMPLETED: the response to replay. */
  response?: StoredResponse;
  /** OWNER, IN_PROGRESS, COMPLETED: when the record is forgotten. */
  expiresAt?: Date;
}

export interface CompleteRequest {
  tenant: string;
  key: string;
  fencingToken: bigint;
  response: StoredResponse;
}

export interface CompleteResponse {
  expiresAt?: Date;
}

export interface ReleaseRequest {
  tenant: string;
  key: string;
  fencingToken: bigint;
}

export interface HeartbeatRequest {
  tenant: string;
  key: string;
  fencingToken: bigint;
  /** New lease from now, in milliseconds; 0 or unset: the default. */
  leaseMs?: number;
}

export interface HeartbeatResponse {
  leaseExpiresAt?: Date;
}

/** Everything the service stores for one (tenant, key). */
export interface KeyRecord {
  key: string;
  state: RecordState;
  fingerprint: Buffer;
  fencingToken: bigint;
  attemptId: string;
  leaseExpiresAt?: Date;
  createdAt?: Date;
  expiresAt?: Date;
  ttlMs: number;
  response?: StoredResponse;
  completedAt?: Date;
}

/**
 * What the middleware needs of a key service: the real `Client` and the
 * `InMemoryKeyService` both implement it. Every method rejects with a
 * KeyServiceError when the call was not applied.
 */
export interface KeyService {
  reserve(request: ReserveRequest): Promise<ReserveResponse>;
  complete(request: CompleteRequest): Promise<CompleteResponse>;
  release(request: ReleaseRequest): Promise<void>;
  heartbeat(request: HeartbeatRequest): Promise<HeartbeatResponse>;
  lookup(tenant: string, key: string): Promise<KeyRecord>;
}
