/**
 * The idempotency middleware for unary methods of @grpc/grpc-js servers.
 *
 *   const idem = new GrpcIdempotency(keys, { requireKey: true });
 *   server.addService(Payments.service, idem.wrapService(Payments.service, impl));
 *
 * The key is the `idempotency-key` metadata; every call is method "grpc",
 * its route and target the full method name ("/payments.v1.Payments/Charge"),
 * its body the serialized request. Replays send initial metadata
 * `idempotency-replayed: true` (and `idempotency-body-omitted: true`). The
 * stored layout is docs/semantics.md, "gRPC replies": status code;
 * headers grpc-message, grpc-status-details-bin, initial/<name>,
 * trailing/<name>; body the serialized response.
 */

import * as grpc from "@grpc/grpc-js";
import { type CoreOptions, type Execution, IdempotencyCore, type Rejection, type RejectReason } from "./core";
import { tenantNameFor } from "./tenant-name";
import type { KeyService, StoredHeader, StoredResponse } from "./types";

/** Options of the gRPC adapter: the core's and these. */
export interface GrpcIdempotencyOptions extends CoreOptions {
  /**
   * The call's tenant ("" for none). Default: the `x-org-id` metadata
   * mapped by tenantNameFor.
   */
  tenant?: (call: grpc.ServerUnaryCall<unknown, unknown>) => string;
}

/** The gRPC status of each rejection reason. */
export const GRPC_STATUS: Record<RejectReason, grpc.status> = {
  "missing-tenant": grpc.status.UNAUTHENTICATED,
  "missing-key": grpc.status.INVALID_ARGUMENT,
  "malformed-key": grpc.status.INVALID_ARGUMENT,
  "in-progress": grpc.status.ABORTED,
  "key-reused": grpc.status.FAILED_PRECONDITION,
  unavailable: grpc.status.UNAVAILABLE,
  internal: grpc.status.INTERNAL,
};

const DETAILS_BIN = "grpc-status-details-bin";

function defaultTenant(call: grpc.ServerUnaryCall<unknown, unknown>): string {
  const v = call.metadata.get("x-org-id")[0];
  if (v === undefined) return "";
  return tenantNameFor(typeof v === "string" ? Buffer.from(v, "latin1") : v);
}

function metadataHeaders(prefix: string, md: grpc.Metadata | undefined, out: StoredHeader[]): void {
  if (md === undefined) return;
  for (const [name, values] of Object.entries(groupedMap(md))) {
    if (name === DETAILS_BIN) continue;
    for (const v of values) {
      out.push({ name: prefix + name, value: typeof v === "string" ? Buffer.from(v, "latin1") : Buffer.from(v) });
    }
  }
}

function groupedMap(md: grpc.Metadata): Record<string, grpc.MetadataValue[]> {
  const out: Record<string, grpc.MetadataValue[]> = {};
  for (const name of Object.keys(md.toJSON())) out[name] = md.get(name);
  return out;
}

function toMetadataValue(name: string, value: Buffer): grpc.MetadataValue {
  return name.endsWith("-bin") ? value : value.toString("latin1");
}

function rejectionError(r: Rejection): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (r.reason === "in-progress") metadata.set("retry-after", String(r.retryAfterSeconds));
  return { code: GRPC_STATUS[r.reason], details: r.detail, metadata };
}

type UnaryImpl = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => unknown;

/** Wraps the unary methods of gRPC services with the middleware. */
export class GrpcIdempotency {
  private readonly core: IdempotencyCore;
  private readonly tenantOf: (call: grpc.ServerUnaryCall<unknown, unknown>) => string;

  constructor(keys: KeyService, options: GrpcIdempotencyOptions = {}) {
    this.core = new IdempotencyCore(keys, {
      coveredMethods: ["grpc"],
      notFinalStatuses: [grpc.status.UNAVAILABLE, grpc.status.RESOURCE_EXHAUSTED],
      ...options,
    });
    this.tenantOf = options.tenant ?? defaultTenant;
  }

  /**
   * `implementation` with each unary method of `definition` wrapped;
   * streaming methods are left as they are.
   */
  wrapService<T extends grpc.UntypedServiceImplementation>(
    definition: grpc.ServiceDefinition,
    implementation: T,
  ): T {
    const out: Record<string, unknown> = { ...implementation };
    for (const [name, method] of Object.entries(definition)) {
      const impl = implementation[name] ?? (method.originalName ? implementation[method.originalName] : undefined);
      if (impl === undefined || method.requestStream || method.responseStream) continue;
      const wrapped = this.wrapUnary(method as grpc.MethodDefinition<unknown, unknown>, impl as unknown as UnaryImpl);
      out[name] = wrapped;
      if (method.originalName) out[method.originalName] = wrapped;
    }
    return out as T;
  }

  /** One unary handler wrapped; `method` gives its path and serializers. */
  wrapUnary(method: grpc.MethodDefinition<unknown, unknown>, handler: UnaryImpl): grpc.handleUnaryCall<unknown, unknown> {
    const path = method.path;
    return (call, callback) => {
      const keyValue = call.metadata.get("idempotency-key")[0];
      const key = keyValue === undefined ? undefined : typeof keyValue === "string" ? keyValue : keyValue.toString("latin1");
      let body: Buffer;
      try {
        body = method.requestSerialize(call.request);
      } catch {
        body = Buffer.alloc(0);
      }
      void this.core
        .begin({ method: "grpc", route: path, tenant: this.tenantOf(call), key, body })
        .then((d) => {
          switch (d.action) {
            case "bypass":
              runHandler(handler, call, callback, method, undefined);
              return;
            case "reject":
              callback(rejectionError(d.rejection), null);
              return;
            case "replay":
              replay(call, callback, method, d.response);
              return;
            case "run":
              runHandler(handler, call, callback, method, d.execution);
              return;
          }
        });
    };
  }
}

function replay(
  call: grpc.ServerUnaryCall<unknown, unknown>,
  callback: grpc.sendUnaryData<unknown>,
  method: grpc.MethodDefinition<unknown, unknown>,
  stored: StoredResponse,
): void {
  const initial = new grpc.Metadata();
  const trailing = new grpc.Metadata();
  let message = "";
  for (const h of stored.headers) {
    try {
      if (h.name === "grpc-message") message = h.value.toString("utf8");
      else if (h.name === DETAILS_BIN) trailing.add(DETAILS_BIN, h.value);
      else if (h.name.startsWith("initial/")) {
        const n = h.name.slice("initial/".length);
        initial.add(n, toMetadataValue(n, h.value));
      } else if (h.name.startsWith("trailing/")) {
        const n = h.name.slice("trailing/".length);
        trailing.add(n, toMetadataValue(n, h.value));
      }
    } catch {
      // A name gRPC refuses: not replayable, skipped.
    }
  }
  initial.set("idempotency-replayed", "true");
  if (stored.bodyOmitted) initial.set("idempotency-body-omitted", "true");
  call.sendMetadata(initial);
  if (stored.statusCode === grpc.status.OK) {
    let value: unknown;
    try {
      value = method.responseDeserialize(stored.body);
    } catch {
      callback({ code: grpc.status.INTERNAL, details: "the stored response could not be read" }, null);
      return;
    }
    callback(null, value, trailing);
    return;
  }
  callback({ code: stored.statusCode, details: message, metadata: trailing }, null);
}

function runHandler(
  handler: UnaryImpl,
  call: grpc.ServerUnaryCall<unknown, unknown>,
  callback: grpc.sendUnaryData<unknown>,
  method: grpc.MethodDefinition<unknown, unknown>,
  execution: Execution | undefined,
): void {
  const path = method.path;
  let answered = false;
  const initialSent: grpc.Metadata[] = [];
  const origSend = call.sendMetadata.bind(call);
  if (execution) {
    call.sendMetadata = (md: grpc.Metadata) => {
      initialSent.push(md.clone());
      origSend(md);
    };
  }
  const fail = (err: unknown): void => {
    if (answered) return;
    answered = true;
    const what = err instanceof Error ? err.message : String(err);
    const reply = (): void =>
      callback({ code: grpc.status.INTERNAL, details: `${path} failed: ${what}` }, null);
    if (execution) void execution.release().then(reply);
    else reply();
  };
  const wrapped: grpc.sendUnaryData<unknown> = (err, value, trailer, flags) => {
    if (answered) return;
    answered = true;
    if (!execution) {
      callback(err, value, trailer, flags);
      return;
    }
    const stored: StoredResponse = { statusCode: 0, headers: [], body: Buffer.alloc(0), bodyOmitted: false };
    let trailing = trailer ?? undefined;
    if (err) {
      const e = err as Partial<grpc.StatusObject> & Error;
      stored.statusCode = typeof e.code === "number" ? e.code : grpc.status.UNKNOWN;
      const message = e.details ?? e.message ?? "";
      if (message !== "") stored.headers.push({ name: "grpc-message", value: Buffer.from(message, "utf8") });
      const details = e.metadata?.get(DETAILS_BIN)[0];
      if (details !== undefined) stored.headers.push({ name: DETAILS_BIN, value: Buffer.from(details) });
      trailing = e.metadata ?? trailing;
    } else {
      try {
        stored.body = method.responseSerialize(value);
      } catch {
        stored.body = Buffer.alloc(0);
      }
    }
    for (const md of initialSent) metadataHeaders("initial/", md, stored.headers);
    metadataHeaders("trailing/", trailing, stored.headers);
    void execution.finish(stored).then(() => callback(err, value, trailer, flags));
  };
  try {
    const ret = handler(call, wrapped) as { then?: unknown } | undefined;
    if (ret && typeof ret.then === "function") (ret as Promise<unknown>).catch(fail);
  } catch (err) {
    fail(err);
  }
}
