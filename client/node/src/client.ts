/**
 * The typed Node.js client of idemkeyd's KeyService.
 *
 * One Client holds one gRPC channel and is meant to be created once per
 * process and shared by every request. Every call has a deadline per
 * attempt, and calls that end UNAVAILABLE, or CANCELLED by a stopping
 * idemkeyd (it cancels the calls it had received but not started), are
 * retried with jittered exponential backoff, on another replica when the
 * address names several (safe for every call: a retried Reserve keeps its
 * attempt_id, a retried Complete is OK, a Heartbeat extends again). A call
 * cancelled on this side (by an interceptor of `channelOptions`) is not
 * retried.
 */

import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { GrpcStatus, KeyServiceError, toKeyServiceError } from "./errors";
import { loadIdemkeyV1 } from "./proto";
import { copyStoredResponse } from "./stored-response";
import type {
  CompleteRequest,
  CompleteResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  KeyRecord,
  KeyService,
  Outcome,
  ReleaseRequest,
  ReserveRequest,
  ReserveResponse,
  StoredResponse,
} from "./types";

/** Options of a Client; every field has a default. */
export interface ClientOptions {
  /**
   * host:port of idemkeyd, or a gRPC target naming several replicas (over
   * the PostgreSQL backend): "ipv4:10.0.0.1:50051,10.0.0.2:50051", or
   * "dns:///idemkey.internal:50051" resolving to each (a Kubernetes
   * headless Service). Calls go round-robin over the replicas that are up.
   * Default "127.0.0.1:50051".
   */
  address?: string;
  /**
   * Talk TLS, verifying idemkeyd with this PEM CA bundle (contents, or a
   * path to read with `rootCertFile`). Unset: plaintext, unless `tls`.
   */
  rootCert?: Buffer | string;
  /** Path of a PEM CA bundle; like rootCert. */
  rootCertFile?: string;
  /** TLS with the system's roots when no rootCert is given. */
  tls?: boolean;
  /** Bearer token sent as "authorization: Bearer TOKEN"; empty: none. */
  token?: string;
  /** Asked for the token before every call instead of `token`. */
  tokenProvider?: () => string | Promise<string>;
  /** Deadline of one attempt of one call, ms. Default 2000. */
  callTimeoutMs?: number;
  /**
   * Attempts per call, the first included, while UNAVAILABLE or CANCELLED
   * by idemkeyd. Default 4.
   */
  maxAttempts?: number;
  /** Backoff before the second attempt, ms (doubles). Default 50. */
  initialBackoffMs?: number;
  /** Longest backoff, ms. Default 1000. */
  maxBackoffMs?: number;
  /** grpc.initial_reconnect_backoff_ms. Default 100. */
  reconnectInitialBackoffMs?: number;
  /** grpc.max_reconnect_backoff_ms. Default 500. */
  reconnectMaxBackoffMs?: number;
  /** grpc.min_reconnect_backoff_ms (C++ core's min connect timeout). Default 1000. */
  minConnectTimeoutMs?: number;
  /**
   * More channel options (they win over the ones above), and the client
   * options of grpc-js (`interceptors` or `interceptor_providers`).
   */
  channelOptions?: grpc.ChannelOptions;
  /** Folder of the .proto files (see proto.ts). */
  protoDir?: string;
}

/** A fresh random attempt id (a version-4 UUID). */
export function newAttemptId(): string {
  return randomUUID();
}

// ---- conversions between the loaded messages and types.ts ----------------

interface PbTimestamp {
  seconds: string;
  nanos: number;
}

function toDate(t: PbTimestamp | null | undefined): Date | undefined {
  if (t === null || t === undefined) return undefined;
  return new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6));
}

function toPbDuration(ms: number | undefined): { seconds: string; nanos: number } | null {
  if (ms === undefined || ms <= 0) return null;
  const whole = Math.floor(ms / 1000);
  return { seconds: String(whole), nanos: Math.round((ms - whole * 1000) * 1e6) };
}

function durationMs(d: { seconds: string; nanos: number } | null | undefined): number {
  if (!d) return 0;
  return Number(d.seconds) * 1000 + d.nanos / 1e6;
}

// A loaded idemkey.v1.StoredResponse has StoredResponse's shape (bytes load
// as Buffers): sent as it is, copied when received.
function toStored(r: StoredResponse | null | undefined): StoredResponse | undefined {
  return r === null || r === undefined ? undefined : copyStoredResponse(r);
}

function outcomeOf(o: string): Outcome {
  switch (o) {
    case "OUTCOME_OWNER":
      return "OWNER";
    case "OUTCOME_IN_PROGRESS":
      return "IN_PROGRESS";
    case "OUTCOME_COMPLETED":
      return "COMPLETED";
    case "OUTCOME_MISMATCH":
      return "MISMATCH";
    default:
      throw new KeyServiceError(GrpcStatus.INTERNAL, `unknown Reserve outcome ${o}`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Set on an attempt whose call was cancelled on this side of the channel. */
interface CancelMark {
  cancelledHere: boolean;
}

// The key of an attempt's CancelMark in its call options (grpc-js hands
// them, copied, to every interceptor).
const CANCEL_MARK = Symbol("idemkey.cancelMark");

/**
 * The innermost interceptor: a cancellation made on this side of the
 * channel (an app's interceptor, a call's cancel()) passes through it on
 * its way to the transport, and marks the attempt. A CANCELLED that did
 * not is idemkeyd's.
 */
const markCancelledHere: grpc.Interceptor = (options, nextCall) => {
  const mark = (options as { [CANCEL_MARK]?: CancelMark })[CANCEL_MARK];
  return new grpc.InterceptingCall(nextCall(options), {
    cancel: (next) => {
      if (mark) mark.cancelledHere = true;
      next();
    },
  });
};

type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, value?: unknown) => void,
) => grpc.ClientUnaryCall;

/**
 * The KeyService client. Implements KeyService for the middleware; errors
 * are KeyServiceErrors with the gRPC code and the service's message.
 */
export class Client implements KeyService {
  private readonly stub: grpc.Client;
  private readonly opts: Required<
    Pick<ClientOptions, "callTimeoutMs" | "maxAttempts" | "initialBackoffMs" | "maxBackoffMs">
  >;
  private readonly token: string;
  private readonly tokenProvider: (() => string | Promise<string>) | undefined;
  /** The address this client talks to. */
  readonly address: string;

  constructor(options: ClientOptions = {}) {
    this.address = options.address ?? "127.0.0.1:50051";
    this.opts = {
      callTimeoutMs: options.callTimeoutMs ?? 2000,
      maxAttempts: Math.max(1, options.maxAttempts ?? 4),
      initialBackoffMs: options.initialBackoffMs ?? 50,
      maxBackoffMs: options.maxBackoffMs ?? 1000,
    };
    this.token = options.token ?? "";
    this.tokenProvider = options.tokenProvider;
    let rootCert: Buffer | undefined;
    if (options.rootCert !== undefined) {
      rootCert = Buffer.isBuffer(options.rootCert)
        ? options.rootCert
        : Buffer.from(options.rootCert, "utf8");
    } else if (options.rootCertFile !== undefined) {
      rootCert = fs.readFileSync(options.rootCertFile);
    }
    const credentials =
      rootCert !== undefined || options.tls
        ? grpc.credentials.createSsl(rootCert ?? null)
        : grpc.credentials.createInsecure();
    const channelOptions: grpc.ClientOptions = {
      // This client retries UNAVAILABLE and CANCELLED itself; gRPC's
      // retries would multiply the attempts.
      "grpc.enable_retries": 0,
      // Every address the target names (several replicas) takes calls in
      // turn; one that is draining or gone takes none.
      "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
      // Stored responses reach 4 MiB; Lookup returns them whole.
      "grpc.max_receive_message_length": -1,
      "grpc.max_send_message_length": -1,
      "grpc.initial_reconnect_backoff_ms": options.reconnectInitialBackoffMs ?? 100,
      "grpc.max_reconnect_backoff_ms": options.reconnectMaxBackoffMs ?? 500,
      // Not read by grpc-js today; kept for parity with the C++ client.
      "grpc.min_reconnect_backoff_ms": options.minConnectTimeoutMs ?? 1000,
      ...options.channelOptions,
    };
    // After the app's interceptors, so that it sees their cancellations.
    if (channelOptions.interceptor_providers) {
      channelOptions.interceptor_providers = [...channelOptions.interceptor_providers, () => markCancelledHere];
    } else {
      channelOptions.interceptors = [...(channelOptions.interceptors ?? []), markCancelledHere];
    }
    const v1 = loadIdemkeyV1(options.protoDir);
    const KeyServiceCtor = v1["KeyService"] as grpc.ServiceClientConstructor;
    this.stub = new KeyServiceCtor(this.address, credentials, channelOptions);
  }

  /** Closes the channel; calls after it fail. */
  close(): void {
    this.stub.close();
  }

  private async currentToken(): Promise<string> {
    return this.tokenProvider ? await this.tokenProvider() : this.token;
  }

  /**
   * One call with the deadline and the retries of the options: of
   * UNAVAILABLE, and of CANCELLED unless the call was cancelled here.
   */
  private async call<T>(method: string, request: unknown): Promise<T> {
    const token = await this.currentToken();
    if (!/^[\x20-\x7e]*$/.test(token)) {
      throw new KeyServiceError(
        GrpcStatus.INVALID_ARGUMENT,
        "the bearer token has a character a header cannot carry (a newline?); tokens are printable ASCII",
      );
    }
    const fn = (this.stub as unknown as Record<string, UnaryMethod>)[method] as UnaryMethod;
    let backoff = this.opts.initialBackoffMs;
    for (let attempt = 1; ; attempt++) {
      const metadata = new grpc.Metadata();
      if (token !== "") metadata.set("authorization", `Bearer ${token}`);
      const mark: CancelMark = { cancelledHere: false };
      const callOptions: grpc.CallOptions & { [CANCEL_MARK]: CancelMark } = {
        deadline: new Date(Date.now() + this.opts.callTimeoutMs),
        [CANCEL_MARK]: mark,
      };
      try {
        return await new Promise<T>((resolve, reject) => {
          fn.call(this.stub, request, metadata, callOptions, (err, value) =>
            err ? reject(err) : resolve(value as T),
          );
        });
      } catch (err) {
        const e = toKeyServiceError(err);
        // CANCELLED not made here comes from a stopping idemkeyd: gRPC
        // cancels the calls it had received but not started when its drain
        // begins. Every call is safe to retry, on another replica if any.
        const retry =
          e.code === GrpcStatus.UNAVAILABLE || (e.code === GrpcStatus.CANCELLED && !mark.cancelledHere);
        if (!retry || attempt >= this.opts.maxAttempts) throw e;
        await sleep(backoff * (0.5 + Math.random() * 0.5));
        backoff = Math.min(backoff * 2, this.opts.maxBackoffMs);
      }
    }
  }

  /** Reserve (tenant, key) for one attempt. */
  async reserve(request: ReserveRequest): Promise<ReserveResponse> {
    const r = await this.call<{
      outcome: string;
      fencingToken: string;
      leaseExpiresAt: PbTimestamp | null;
      response: StoredResponse | null;
      expiresAt: PbTimestamp | null;
    }>("Reserve", {
      tenant: request.tenant,
      key: request.key,
      fingerprint: request.fingerprint,
      attemptId: request.attemptId,
      lease: toPbDuration(request.leaseMs),
      ttl: toPbDuration(request.ttlMs),
    });
    const out: ReserveResponse = {
      outcome: outcomeOf(r.outcome),
      fencingToken: BigInt(r.fencingToken || "0"),
    };
    const lease = toDate(r.leaseExpiresAt);
    if (lease) out.leaseExpiresAt = lease;
    const expires = toDate(r.expiresAt);
    if (expires) out.expiresAt = expires;
    const response = toStored(r.response);
    if (response && out.outcome === "COMPLETED") out.response = response;
    return out;
  }

  /** Store the response of the attempt holding the lease. */
  async complete(request: CompleteRequest): Promise<CompleteResponse> {
    const r = await this.call<{ expiresAt: PbTimestamp | null }>("Complete", {
      tenant: request.tenant,
      key: request.key,
      fencingToken: request.fencingToken.toString(),
      response: request.response,
    });
    const out: CompleteResponse = {};
    const expires = toDate(r.expiresAt);
    if (expires) out.expiresAt = expires;
    return out;
  }

  /** Forget a reservation so that a retry runs the request. */
  async release(request: ReleaseRequest): Promise<void> {
    await this.call("Release", {
      tenant: request.tenant,
      key: request.key,
      fencingToken: request.fencingToken.toString(),
    });
  }

  /** Extend the lease of the attempt holding it. */
  async heartbeat(request: HeartbeatRequest): Promise<HeartbeatResponse> {
    const r = await this.call<{ leaseExpiresAt: PbTimestamp | null }>("Heartbeat", {
      tenant: request.tenant,
      key: request.key,
      fencingToken: request.fencingToken.toString(),
      lease: toPbDuration(request.leaseMs),
    });
    const out: HeartbeatResponse = {};
    const lease = toDate(r.leaseExpiresAt);
    if (lease) out.leaseExpiresAt = lease;
    return out;
  }

  /** Read a record without changing it (NOT_FOUND when absent). */
  async lookup(tenant: string, key: string): Promise<KeyRecord> {
    const r = await this.call<{ record: Record<string, unknown> | null }>("Lookup", { tenant, key });
    const rec = r.record as {
      key: string;
      state: string;
      fingerprint: Buffer;
      fencingToken: string;
      attemptId: string;
      leaseExpiresAt: PbTimestamp | null;
      createdAt: PbTimestamp | null;
      expiresAt: PbTimestamp | null;
      ttl: { seconds: string; nanos: number } | null;
      response: StoredResponse | null;
      completedAt: PbTimestamp | null;
    };
    const out: KeyRecord = {
      key: rec.key,
      state: rec.state === "STATE_COMPLETED" ? "COMPLETED" : "IN_PROGRESS",
      fingerprint: Buffer.from(rec.fingerprint),
      fencingToken: BigInt(rec.fencingToken || "0"),
      attemptId: rec.attemptId,
      ttlMs: durationMs(rec.ttl),
    };
    const set = <K extends keyof KeyRecord>(k: K, v: KeyRecord[K] | undefined): void => {
      if (v !== undefined) out[k] = v;
    };
    set("leaseExpiresAt", toDate(rec.leaseExpiresAt));
    set("createdAt", toDate(rec.createdAt));
    set("expiresAt", toDate(rec.expiresAt));
    set("completedAt", toDate(rec.completedAt));
    if (out.state === "COMPLETED") set("response", toStored(rec.response));
    return out;
  }

  /** Connectivity check: answers at once without touching the store. */
  async ping(): Promise<void> {
    await this.call("Ping", {});
  }
}
