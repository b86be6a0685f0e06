/**
 * The idempotency middleware's decisions, free of any HTTP or gRPC type
 * (the counterpart of the C++ IdempotencyCore).
 *
 * An adapter turns its framework's request into an IncomingRequest, awaits
 * begin(), and acts on the Decision:
 *   - "bypass": run the handler; nothing is recorded;
 *   - "run": run the handler, then `execution.finish(stored)`; or, when the
 *     handler failed, `execution.release()`;
 *   - "replay": send `response` (plus the replayed marker);
 *   - "reject": send an error built from `rejection`.
 */

import { GrpcStatus, isNoAnswer, KeyServiceError, toKeyServiceError } from "./errors";
import { newAttemptId } from "./client";
import { type DurationInput, toMillis } from "./duration";
import { fingerprint as computeFingerprint } from "./fingerprint";
import type { EventKind, MiddlewareEvent, Observer } from "./observer";
import type { KeyService, ReserveRequest, StoredResponse } from "./types";
import { checkKey, DEFAULT_MAX_KEY_BYTES } from "./validation";

/** The core's options (protocol-neutral). */
export interface CoreOptions {
  /** Methods that are covered; exact, case included. Default POST, PUT, PATCH, DELETE. */
  coveredMethods?: Iterable<string>;
  /** "METHOD ROUTE" pairs that bypass, e.g. "POST /v1/auth/login". Default none. */
  excludedRoutes?: Iterable<string>;
  /** A covered request without a key is refused (400) instead of run unprotected. Default false. */
  requireKey?: boolean;
  /** A covered request without a tenant is refused (401) instead of run unprotected. Default false. */
  requireTenant?: boolean;
  /** Longest accepted key. Default 256. */
  maxKeyBytes?: number;
  /** Lease of each attempt. Default 30 s. */
  lease?: DurationInput;
  /** How often a running handler renews its lease. Default lease / 3. */
  heartbeatInterval?: DurationInput;
  /** Retention of completed responses; 0: the service's default (24 h). */
  ttl?: DurationInput;
  /** Statuses released instead of stored. Default: none in the core (adapters set theirs). */
  notFinalStatuses?: Iterable<number>;
  /** Run the handler unprotected when the key service gives no answer. Default false. */
  failOpen?: boolean;
  /** Wait up to this long for an in-progress attempt's result. Default 0 (409 at once). */
  waitForResult?: DurationInput;
  /** Poll interval while waiting. Default 50 ms. */
  waitPollInterval?: DurationInput;
  /** Told of every decision and finish. */
  observer?: Observer;
}

/** A request as the core sees it. */
export interface IncomingRequest {
  /** "POST", or "grpc". */
  method: string;
  /** Path (no query) or full gRPC method name: for excludedRoutes. */
  route: string;
  /** What the fingerprint covers beside method and body; empty: route. */
  target?: string | Buffer;
  /** "" : no tenant. */
  tenant: string;
  /** The Idempotency-Key; undefined when the request has none. */
  key?: string | undefined;
  /** Raw body, or serialized request message. */
  body: Buffer;
}

/** Why a request was refused. */
export type RejectReason =
  | "missing-tenant" // HTTP 401, gRPC UNAUTHENTICATED
  | "missing-key" // HTTP 400, gRPC INVALID_ARGUMENT
  | "malformed-key" // HTTP 400, gRPC INVALID_ARGUMENT
  | "in-progress" // HTTP 409 + Retry-After, gRPC ABORTED
  | "key-reused" // HTTP 422, gRPC FAILED_PRECONDITION
  | "unavailable" // HTTP 503, gRPC UNAVAILABLE
  | "internal"; // HTTP 500, gRPC INTERNAL

/** A refusal, written for the app's client (never the service's text). */
export interface Rejection {
  reason: RejectReason;
  title: string;
  detail: string;
  /** in-progress: whole seconds until the holder's lease ends, at least 1. */
  retryAfterSeconds: number;
}

/** What to do with a request. */
export type Decision =
  | { action: "bypass" }
  | { action: "run"; execution: Execution }
  | { action: "replay"; response: StoredResponse }
  | { action: "reject"; rejection: Rejection };

interface Resolved {
  covered: Set<string>;
  excluded: Set<string>;
  requireKey: boolean;
  requireTenant: boolean;
  maxKeyBytes: number;
  leaseMs: number;
  heartbeatMs: number;
  ttlMs: number;
  notFinal: Set<number>;
  failOpen: boolean;
  waitMs: number;
  pollMs: number;
  observer: Observer | undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function reject(
  reason: RejectReason,
  title: string,
  detail: string,
  retryAfterSeconds = 0,
): Decision {
  return { action: "reject", rejection: { reason, title, detail, retryAfterSeconds } };
}

/**
 * The lease of one attempt while its handler runs: heartbeats keep it alive
 * until finish() or release().
 */
export class Execution {
  private done = false;
  private timer: NodeJS.Timeout | undefined;

  /** @internal */
  constructor(
    private readonly core: IdempotencyCore,
    private readonly keys: KeyService,
    readonly tenant: string,
    readonly route: string,
    readonly key: string,
    /** The fencing token of this attempt. */
    readonly fencingToken: bigint,
  ) {
    this.startHeartbeats();
  }

  /** Whether finish() or release() was called. */
  get finished(): boolean {
    return this.done;
  }

  private startHeartbeats(): void {
    const { heartbeatMs, leaseMs } = this.core.resolved;
    if (heartbeatMs <= 0) return;
    this.timer = setInterval(() => {
      const start = Date.now();
      this.keys
        .heartbeat({
          tenant: this.tenant,
          key: this.key,
          fencingToken: this.fencingToken,
          leaseMs,
        })
        .catch((err: unknown) => {
          const e = toKeyServiceError(err);
          // A lease that is gone needs no more beats; a transient error is
          // retried at the next beat.
          if (
            e.code === GrpcStatus.ABORTED ||
            e.code === GrpcStatus.NOT_FOUND ||
            e.code === GrpcStatus.FAILED_PRECONDITION
          ) {
            this.stopHeartbeats();
            if (e.code !== GrpcStatus.FAILED_PRECONDITION && !this.done) {
              this.notify("lease_lost", start, e, "");
            }
          }
        });
    }, heartbeatMs);
    this.timer.unref();
  }

  private stopHeartbeats(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private notify(kind: EventKind, start: number, err?: KeyServiceError, route = this.route): void {
    this.core.notify({
      kind,
      tenant: this.tenant,
      route,
      elapsedMs: Date.now() - start,
      ...(err ? { serviceError: err } : {}),
    });
  }

  /**
   * Stores `response` for replays, or releases the key when its status is
   * "not final". A response too large to store is stored without its body,
   * then without its headers, flagged bodyOmitted. Never rejects: a failed
   * Complete is told to the observer (the response goes out either way) and
   * its error returned.
   */
  async finish(response: StoredResponse): Promise<KeyServiceError | undefined> {
    if (this.done) return undefined;
    const start = Date.now();
    if (this.core.resolved.notFinal.has(response.statusCode)) {
      return this.release();
    }
    this.done = true;
    this.stopHeartbeats();
    let stored: StoredResponse = response;
    let omitted = false;
    for (let step = 0; ; step++) {
      try {
        await this.keys.complete({
          tenant: this.tenant,
          key: this.key,
          fencingToken: this.fencingToken,
          response: stored,
        });
        this.notify(omitted ? "body_omitted" : "stored", start);
        return undefined;
      } catch (err) {
        const e = toKeyServiceError(err);
        // Too large: at most once still holds, so store what fits rather
        // than release the key.
        if (e.code === GrpcStatus.RESOURCE_EXHAUSTED && step < 2) {
          stored =
            step === 0
              ? { ...stored, body: Buffer.alloc(0), bodyOmitted: true }
              : { ...stored, headers: [], bodyOmitted: true };
          omitted = true;
          continue;
        }
        // Not released: the handler ran, so a retry must not run it again
        // before the lease lapses.
        this.notify(
          e.code === GrpcStatus.ABORTED || e.code === GrpcStatus.NOT_FOUND
            ? "lease_lost"
            : "finish_failed",
          start,
          e,
        );
        return e;
      }
    }
  }

  /**
   * Forgets the reservation so that a retry runs the handler again (the
   * handler failed, or its status is not final). Never rejects; tells the
   * observer "released" and returns the service's error, if any.
   */
  async release(): Promise<KeyServiceError | undefined> {
    if (this.done) return undefined;
    this.done = true;
    this.stopHeartbeats();
    const start = Date.now();
    try {
      await this.keys.release({
        tenant: this.tenant,
        key: this.key,
        fencingToken: this.fencingToken,
      });
      this.notify("released", start);
      return undefined;
    } catch (err) {
      const e = toKeyServiceError(err);
      this.notify("released", start, e);
      return e;
    }
  }
}

/**
 * Decides what happens to each request (docs/semantics.md, "Middleware").
 * One core serves every request of a route group; `keys` is shared (one
 * Client per process).
 */
export class IdempotencyCore {
  /** @internal */
  readonly resolved: Resolved;

  constructor(
    private readonly keys: KeyService,
    options: CoreOptions = {},
  ) {
    const leaseMs = toMillis(options.lease ?? 30_000);
    this.resolved = {
      covered: new Set(options.coveredMethods ?? ["POST", "PUT", "PATCH", "DELETE"]),
      excluded: new Set(options.excludedRoutes ?? []),
      requireKey: options.requireKey ?? false,
      requireTenant: options.requireTenant ?? false,
      maxKeyBytes: options.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES,
      leaseMs,
      heartbeatMs:
        options.heartbeatInterval !== undefined
          ? toMillis(options.heartbeatInterval)
          : Math.max(1, Math.floor(leaseMs / 3)),
      ttlMs: toMillis(options.ttl ?? 0),
      notFinal: new Set(options.notFinalStatuses ?? []),
      failOpen: options.failOpen ?? false,
      waitMs: toMillis(options.waitForResult ?? 0),
      pollMs: toMillis(options.waitPollInterval ?? 50),
      observer: options.observer,
    };
  }

  /** @internal */
  notify(event: MiddlewareEvent): void {
    const o = this.resolved.observer;
    if (o === undefined) return;
    try {
      o(event);
    } catch {
      // An observer's failure is not the request's.
    }
  }

  private event(
    kind: EventKind,
    request: IncomingRequest,
    start: number | undefined,
    err?: KeyServiceError,
  ): void {
    this.notify({
      kind,
      tenant: request.tenant,
      route: request.route,
      elapsedMs: start === undefined ? 0 : Date.now() - start,
      ...(err ? { serviceError: err } : {}),
    });
  }

  /**
   * Whether a request of this method and route goes through the middleware
   * at all (covered method, route not excluded).
   */
  covers(method: string, route: string): boolean {
    return this.resolved.covered.has(method) && !this.resolved.excluded.has(`${method} ${route}`);
  }

  /** What to do with `request`. Never rejects. */
  async begin(request: IncomingRequest): Promise<Decision> {
    const o = this.resolved;
    const methodRoute = `${request.method} ${request.route}`;
    if (!o.covered.has(request.method) || o.excluded.has(methodRoute)) {
      this.event("bypass", request, undefined);
      return { action: "bypass" };
    }
    if (request.tenant === "") {
      if (!o.requireTenant) {
        this.event("bypass", request, undefined);
        return { action: "bypass" };
      }
      this.event("missing_tenant", request, undefined);
      return reject(
        "missing-tenant",
        "Tenant required",
        `${methodRoute} needs the caller's account (tenant); authenticate and send the request again`,
      );
    }
    if (request.key === undefined) {
      if (!o.requireKey) {
        this.event("bypass", request, undefined);
        return { action: "bypass" };
      }
      this.event("rejected_key", request, undefined);
      return reject(
        "missing-key",
        "Idempotency key required",
        `${methodRoute} requires an Idempotency-Key; send a unique value (a UUID) and reuse it on retries`,
      );
    }
    const keyBytes = Buffer.from(request.key, "latin1");
    const bad = checkKey(keyBytes, o.maxKeyBytes);
    if (bad !== null) {
      this.event("rejected_key", request, undefined);
      return reject("malformed-key", "Malformed idempotency key", `Idempotency-Key: ${bad}`);
    }

    const target =
      request.target === undefined || request.target.length === 0 ? request.route : request.target;
    const start = Date.now();
    const reserve: ReserveRequest = {
      tenant: request.tenant,
      key: request.key,
      fingerprint: computeFingerprint(request.method, target, request.body),
      attemptId: newAttemptId(),
      leaseMs: o.leaseMs,
    };
    if (o.ttlMs > 0) reserve.ttlMs = o.ttlMs;
    const waitUntil = Date.now() + o.waitMs;
    for (;;) {
      let r;
      try {
        r = await this.keys.reserve(reserve);
      } catch (err) {
        const e = toKeyServiceError(err);
        if (isNoAnswer(e.code)) {
          if (o.failOpen) {
            this.event("fail_open_run", request, start, e);
            return { action: "bypass" };
          }
          this.event("unavailable", request, start, e);
          return reject(
            "unavailable",
            "Idempotency service unavailable",
            "the request was not run because its idempotency key could not be checked; retry with the same key",
          );
        }
        // The service's own message is for the app's operators: the
        // observer gets it.
        this.event("service_error", request, start, e);
        if (e.code === GrpcStatus.RESOURCE_EXHAUSTED) {
          return reject(
            "unavailable",
            "Idempotency service unavailable",
            "the request was not run because the idempotency service cannot take it now; retry later with the same key",
          );
        }
        return reject(
          "internal",
          "Idempotency check failed",
          "the request was not run because its idempotency key could not be checked; the server's operators have been told",
        );
      }
      switch (r.outcome) {
        case "OWNER": {
          this.event("run", request, start);
          const execution = new Execution(
            this,
            this.keys,
            request.tenant,
            request.route,
            request.key,
            r.fencingToken,
          );
          return { action: "run", execution };
        }
        case "COMPLETED":
          this.event("replay", request, start);
          return {
            action: "replay",
            response: r.response ?? {
              statusCode: 0,
              headers: [],
              body: Buffer.alloc(0),
              bodyOmitted: false,
            },
          };
        case "MISMATCH":
          this.event("mismatch", request, start);
          return reject(
            "key-reused",
            "Idempotency key reused for another request",
            "this Idempotency-Key was first used with a different method, target or body; use a new key for a new request",
          );
        case "IN_PROGRESS": {
          const now = Date.now();
          const leaseEnd = r.leaseExpiresAt?.getTime() ?? now;
          if (now + o.pollMs <= waitUntil) {
            // Same attempt id: if the lease lapses, this attempt takes over.
            await sleep(Math.max(1, Math.min(o.pollMs, leaseEnd - now)));
            continue;
          }
          this.event("in_progress", request, start);
          const retryAfter = Math.max(1, Math.ceil((leaseEnd - now) / 1000));
          return reject(
            "in-progress",
            "Request in progress",
            "a request with this Idempotency-Key is still running; retry after it finishes",
            retryAfter,
          );
        }
      }
    }
  }
}
