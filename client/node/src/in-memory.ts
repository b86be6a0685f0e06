/**
 * A key service in this process's memory, for apps' unit tests: the same
 * state machine as idemkeyd (docs/semantics.md, "Transition table"): the
 * four Reserve outcomes, leases, fencing tokens, the order of the checks,
 * the limits, expiry. Nothing outlives the process.
 */

import { checkKey, checkPrintable, checkTenantName, DEFAULT_MAX_KEY_BYTES, MAX_ATTEMPT_ID_BYTES } from "./validation";
import { GrpcStatus, KeyServiceError } from "./errors";
import { copyStoredResponse } from "./stored-response";
import type {
  CompleteRequest,
  CompleteResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  KeyRecord,
  KeyService,
  ReleaseRequest,
  ReserveRequest,
  ReserveResponse,
  StoredResponse,
} from "./types";

/** Limits and behaviour of an InMemoryKeyService (idemkeyd's flag defaults). */
export interface InMemoryOptions {
  /** Clock, ms since the epoch. Default Date.now. */
  now?: () => number;
  /** Unknown tenants are created by their first Reserve. Default true. */
  autoCreateTenants?: boolean;
  /** At most this many tenants. Default 1000. */
  maxTenants?: number;
  /** Longest key. Default 256. */
  maxKeyBytes?: number;
  /** Largest encoded StoredResponse. Default 4 MiB. */
  maxResponseBytes?: number;
  /** Lease when none is asked. Default 30 s. */
  defaultLeaseMs?: number;
  /** Longest lease. Default 1 h (the shortest is 1 s). */
  maxLeaseMs?: number;
  /** Retention when none is asked. Default 24 h. */
  defaultTtlMs?: number;
  /** Shortest retention. Default 1 min. */
  minTtlMs?: number;
  /** Longest retention. Default 30 days. */
  maxTtlMs?: number;
  /**
   * Called before every call with its name ("Reserve", ...) and request;
   * what it throws is the call's answer (to simulate outages in tests).
   */
  onCall?: (method: string, request: unknown) => void;
}

interface Rec {
  state: "IN_PROGRESS" | "COMPLETED";
  fingerprint: Buffer;
  token: bigint;
  attemptId: string;
  leaseEnd: number;
  createdAt: number;
  expiresAt: number;
  ttlMs: number;
  response?: StoredResponse;
  completedAt?: number;
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function lenField(len: number): number {
  return 1 + varintSize(len) + len;
}

/** The size of `r` encoded as idemkey.v1.StoredResponse. */
export function encodedSize(r: StoredResponse): number {
  let size = 0;
  if (r.statusCode !== 0) {
    size += 1 + (r.statusCode < 0 ? 10 : varintSize(r.statusCode));
  }
  for (const h of r.headers) {
    const name = Buffer.byteLength(h.name, "utf8");
    let inner = 0;
    if (name > 0) inner += lenField(name);
    if (h.value.length > 0) inner += lenField(h.value.length);
    size += lenField(inner);
  }
  if (r.body.length > 0) size += lenField(r.body.length);
  if (r.bodyOmitted) size += 2;
  return size;
}

function invalid(message: string): KeyServiceError {
  return new KeyServiceError(GrpcStatus.INVALID_ARGUMENT, message);
}

function fmt(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** See the file comment. Implements KeyService. */
export class InMemoryKeyService implements KeyService {
  private readonly tenants = new Map<string, Map<string, Rec>>();
  private lastToken = 0n;
  private readonly o: Required<Omit<InMemoryOptions, "onCall">> & Pick<InMemoryOptions, "onCall">;

  constructor(options: InMemoryOptions = {}) {
    this.o = {
      now: options.now ?? Date.now,
      autoCreateTenants: options.autoCreateTenants ?? true,
      maxTenants: options.maxTenants ?? 1000,
      maxKeyBytes: options.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES,
      maxResponseBytes: options.maxResponseBytes ?? 4 * 1024 * 1024,
      defaultLeaseMs: options.defaultLeaseMs ?? 30_000,
      maxLeaseMs: options.maxLeaseMs ?? 3_600_000,
      defaultTtlMs: options.defaultTtlMs ?? 86_400_000,
      minTtlMs: options.minTtlMs ?? 60_000,
      maxTtlMs: options.maxTtlMs ?? 30 * 86_400_000,
      onCall: options.onCall,
    };
  }

  /** Creates a tenant (ALREADY_EXISTS if it is there). */
  createTenant(name: string): void {
    const bad = checkTenantName(name);
    if (bad !== null) throw invalid(bad);
    if (this.tenants.has(name)) {
      throw new KeyServiceError(GrpcStatus.ALREADY_EXISTS, `tenant "${name}" exists`);
    }
    if (this.tenants.size >= this.o.maxTenants) {
      throw new KeyServiceError(GrpcStatus.RESOURCE_EXHAUSTED, `at most ${this.o.maxTenants} tenants`);
    }
    this.tenants.set(name, new Map());
  }

  /** Deletes a live record, whatever its state (admin DeleteRecord). */
  deleteRecord(tenant: string, key: string): void {
    const rec = this.live(this.tenantOf(tenant), key);
    if (rec === undefined) throw this.notFound(key);
    this.tenants.get(tenant)?.delete(key);
  }

  private enter(method: string, request: unknown): void {
    if (this.o.onCall) this.o.onCall(method, request);
  }

  private resolve(field: string, ms: number | undefined, def: number, min: number, max: number): number {
    if (ms === undefined || ms === 0) return def;
    if (ms < min || ms > max) {
      throw invalid(
        `${field} of ${fmt(ms)} is out of range; it must be between ${fmt(min)} and ${fmt(max)} (or unset for the default of ${fmt(def)})`,
      );
    }
    return ms;
  }

  private checkTenantAndKey(tenant: string, key: string): void {
    const badTenant = checkTenantName(tenant);
    if (badTenant !== null) throw invalid(badTenant);
    const badKey = checkKey(key, this.o.maxKeyBytes);
    if (badKey !== null) throw invalid(badKey);
  }

  private tenantOf(tenant: string): Map<string, Rec> {
    const t = this.tenants.get(tenant);
    if (t === undefined) {
      throw new KeyServiceError(GrpcStatus.NOT_FOUND, `tenant "${tenant}" does not exist`);
    }
    return t;
  }

  private live(t: Map<string, Rec>, key: string): Rec | undefined {
    const rec = t.get(key);
    if (rec === undefined) return undefined;
    if (rec.expiresAt <= this.o.now()) {
      t.delete(key);
      return undefined;
    }
    return rec;
  }

  private notFound(key: string): KeyServiceError {
    return new KeyServiceError(GrpcStatus.NOT_FOUND, `no live record for key "${key}"`);
  }

  private newToken(): bigint {
    this.lastToken += 1n;
    return this.lastToken;
  }

  /** Reserve (tenant, key) for one attempt. */
  async reserve(req: ReserveRequest): Promise<ReserveResponse> {
    this.enter("Reserve", req);
    this.checkTenantAndKey(req.tenant, req.key);
    if (req.fingerprint.length !== 32) {
      throw invalid(`fingerprint is ${req.fingerprint.length} bytes; it must be the 32-byte SHA-256 of the request`);
    }
    const badAttempt = checkPrintable("attempt_id", req.attemptId, 1, MAX_ATTEMPT_ID_BYTES);
    if (badAttempt !== null) throw invalid(badAttempt);
    const leaseMs = this.resolve("lease", req.leaseMs, this.o.defaultLeaseMs, 1000, this.o.maxLeaseMs);
    const ttlMs = this.resolve("ttl", req.ttlMs, this.o.defaultTtlMs, this.o.minTtlMs, this.o.maxTtlMs);
    let t = this.tenants.get(req.tenant);
    if (t === undefined) {
      if (!this.o.autoCreateTenants) this.tenantOf(req.tenant);
      this.createTenant(req.tenant);
      t = this.tenantOf(req.tenant);
    }
    const now = this.o.now();
    const rec = this.live(t, req.key);
    if (rec === undefined) {
      const leaseEnd = now + leaseMs;
      const created: Rec = {
        state: "IN_PROGRESS",
        fingerprint: Buffer.from(req.fingerprint),
        token: this.newToken(),
        attemptId: req.attemptId,
        leaseEnd,
        createdAt: now,
        expiresAt: Math.max(now + ttlMs, leaseEnd),
        ttlMs,
      };
      t.set(req.key, created);
      return this.owner(created);
    }
    if (!rec.fingerprint.equals(req.fingerprint)) {
      return { outcome: "MISMATCH", fencingToken: 0n };
    }
    if (rec.state === "COMPLETED") {
      return {
        outcome: "COMPLETED",
        fencingToken: 0n,
        response: copyStoredResponse(rec.response as StoredResponse),
        expiresAt: new Date(rec.expiresAt),
      };
    }
    const lapsed = rec.leaseEnd <= now;
    if (rec.attemptId === req.attemptId) {
      if (lapsed) {
        rec.leaseEnd = now + leaseMs;
        rec.expiresAt = Math.max(rec.expiresAt, rec.leaseEnd);
      }
      return this.owner(rec);
    }
    if (!lapsed) {
      return {
        outcome: "IN_PROGRESS",
        fencingToken: 0n,
        leaseExpiresAt: new Date(rec.leaseEnd),
        expiresAt: new Date(rec.expiresAt),
      };
    }
    rec.token = this.newToken();
    rec.attemptId = req.attemptId;
    rec.leaseEnd = now + leaseMs;
    rec.expiresAt = Math.max(rec.expiresAt, rec.leaseEnd);
    return this.owner(rec);
  }

  private owner(rec: Rec): ReserveResponse {
    return {
      outcome: "OWNER",
      fencingToken: rec.token,
      leaseExpiresAt: new Date(rec.leaseEnd),
      expiresAt: new Date(rec.expiresAt),
    };
  }

  /**
   * The record a Complete, Release or Heartbeat of `token` may touch, in the
   * order of the checks: absent, wrong token, completed (returned, for the
   * caller to judge), lapsed lease.
   */
  private held(tenant: string, key: string, token: bigint): Rec {
    this.checkTenantAndKey(tenant, key);
    const rec = this.live(this.tenantOf(tenant), key);
    if (rec === undefined) throw this.notFound(key);
    if (rec.token !== token) {
      throw new KeyServiceError(GrpcStatus.ABORTED, `another attempt took over key "${key}"`);
    }
    if (rec.state === "COMPLETED") return rec;
    if (rec.leaseEnd <= this.o.now()) {
      throw new KeyServiceError(GrpcStatus.ABORTED, `the lease of key "${key}" has lapsed`);
    }
    return rec;
  }

  /** Store the response of the attempt holding the lease. */
  async complete(req: CompleteRequest): Promise<CompleteResponse> {
    this.enter("Complete", req);
    const rec = this.held(req.tenant, req.key, req.fencingToken);
    if (rec.state === "COMPLETED") return { expiresAt: new Date(rec.expiresAt) };
    const size = encodedSize(req.response);
    if (size > this.o.maxResponseBytes) {
      throw new KeyServiceError(
        GrpcStatus.RESOURCE_EXHAUSTED,
        `response is ${size} bytes encoded; at most ${this.o.maxResponseBytes} are stored`,
      );
    }
    const now = this.o.now();
    rec.state = "COMPLETED";
    rec.response = copyStoredResponse(req.response);
    rec.completedAt = now;
    rec.expiresAt = now + rec.ttlMs;
    rec.leaseEnd = 0;
    return { expiresAt: new Date(rec.expiresAt) };
  }

  /** Forget a reservation so that a retry runs the request. */
  async release(req: ReleaseRequest): Promise<void> {
    this.enter("Release", req);
    const rec = this.held(req.tenant, req.key, req.fencingToken);
    if (rec.state === "COMPLETED") {
      throw new KeyServiceError(GrpcStatus.FAILED_PRECONDITION, `key "${req.key}" is completed`);
    }
    this.tenants.get(req.tenant)?.delete(req.key);
  }

  /** Extend the lease of the attempt holding it. */
  async heartbeat(req: HeartbeatRequest): Promise<HeartbeatResponse> {
    this.enter("Heartbeat", req);
    const leaseMs = this.resolve("lease", req.leaseMs, this.o.defaultLeaseMs, 1000, this.o.maxLeaseMs);
    const rec = this.held(req.tenant, req.key, req.fencingToken);
    if (rec.state === "COMPLETED") {
      throw new KeyServiceError(GrpcStatus.FAILED_PRECONDITION, `key "${req.key}" is completed`);
    }
    rec.leaseEnd = this.o.now() + leaseMs;
    rec.expiresAt = Math.max(rec.expiresAt, rec.leaseEnd);
    return { leaseExpiresAt: new Date(rec.leaseEnd) };
  }

  /** Read a record without changing it. */
  async lookup(tenant: string, key: string): Promise<KeyRecord> {
    this.enter("Lookup", { tenant, key });
    this.checkTenantAndKey(tenant, key);
    const rec = this.live(this.tenantOf(tenant), key);
    if (rec === undefined) throw this.notFound(key);
    const out: KeyRecord = {
      key,
      state: rec.state,
      fingerprint: Buffer.from(rec.fingerprint),
      fencingToken: rec.token,
      attemptId: rec.attemptId,
      createdAt: new Date(rec.createdAt),
      expiresAt: new Date(rec.expiresAt),
      ttlMs: rec.ttlMs,
    };
    if (rec.state === "IN_PROGRESS") out.leaseExpiresAt = new Date(rec.leaseEnd);
    if (rec.response) out.response = copyStoredResponse(rec.response);
    if (rec.completedAt !== undefined) out.completedAt = new Date(rec.completedAt);
    return out;
  }
}
