/** Capturing and replaying Node.js HTTP responses (shared by HTTP adapters). */

import type { ServerResponse } from "node:http";
import type { StoredResponse, StoredHeader } from "./types";

/**
 * Headers that describe the framing of one transfer rather than the
 * response: never stored, never replayed (Node.js sets them while writing).
 */
const FRAMING = new Set(["content-length", "transfer-encoding", "connection", "keep-alive", "date"]);

/** Header of a replayed response. */
export const REPLAYED_HEADER = "Idempotency-Replayed";
/** Header of a replay whose body was too large to store. */
export const BODY_OMITTED_HEADER = "Idempotency-Body-Omitted";

/** The response's headers, in the order they were set, names as set. */
export function headersOf(res: ServerResponse): StoredHeader[] {
  // getRawHeaderNames (Node.js >= 15.13) keeps the case the app used.
  const raw = (res as unknown as { getRawHeaderNames?: () => string[] }).getRawHeaderNames;
  const names = typeof raw === "function" ? raw.call(res) : res.getHeaderNames();
  const out: StoredHeader[] = [];
  for (const name of names) {
    if (FRAMING.has(name.toLowerCase())) continue;
    const v = res.getHeader(name);
    if (v === undefined) continue;
    // Node.js writes header values as latin1: these are the bytes sent.
    for (const one of Array.isArray(v) ? v : [v]) {
      out.push({ name, value: Buffer.from(String(one), "latin1") });
    }
  }
  return out;
}

/**
 * Sends `stored` on `res`: the stored status, headers and body (the
 * response's own headers cleared first), plus Idempotency-Replayed: true
 * and, when the body was not stored, Idempotency-Body-Omitted: true.
 */
export function sendStored(res: ServerResponse, stored: StoredResponse): void {
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  const status = stored.statusCode;
  res.statusCode = status >= 100 && status <= 999 ? status : 500;
  for (const h of stored.headers) {
    if (FRAMING.has(h.name.toLowerCase())) continue;
    try {
      res.appendHeader(h.name, h.value.toString("latin1"));
    } catch {
      // A header Node.js cannot send (stored by another implementation).
    }
  }
  res.setHeader(REPLAYED_HEADER, "true");
  if (stored.bodyOmitted) res.setHeader(BODY_OMITTED_HEADER, "true");
  res.end(stored.body);
}

type Callback = (err?: Error | null) => void;

/**
 * Holds back everything written to `res` (status, headers, body) until the
 * handler ends the response, then hands the response to `onEnd`; once
 * `onEnd` resolves (or at once, with `sendFirst`), sends it for real.
 * `passThrough()` gives `res` back
 * (what was held is dropped), e.g. when the handler failed and an error
 * handler answers instead.
 */
export class ResponseCapture {
  private phase: "capturing" | "ending" | "released" = "capturing";
  private readonly chunks: Buffer[] = [];
  private readonly callbacks: Callback[] = [];
  private readonly orig: {
    write: ServerResponse["write"];
    end: ServerResponse["end"];
    writeHead: ServerResponse["writeHead"];
    flushHeaders: ServerResponse["flushHeaders"];
  };

  /**
   * `onEnd` stores the response the handler ended; it is sent once that
   * settles, or at once (and stored after) with `sendFirst`.
   */
  constructor(
    private readonly res: ServerResponse,
    private readonly onEnd: (stored: StoredResponse) => Promise<void>,
    private readonly sendFirst = false,
  ) {
    this.orig = {
      write: res.write,
      end: res.end,
      writeHead: res.writeHead,
      flushHeaders: res.flushHeaders,
    };
    const self = this;
    const r = res as unknown as Record<string, unknown>;
    r["writeHead"] = function writeHead(statusCode: number, ...rest: unknown[]): ServerResponse {
      if (self.phase === "released") {
        return (self.orig.writeHead as (...a: unknown[]) => ServerResponse).call(res, statusCode, ...rest);
      }
      res.statusCode = statusCode;
      let headers = rest[0];
      if (typeof headers === "string") {
        res.statusMessage = headers;
        headers = rest[1];
      }
      if (Array.isArray(headers)) {
        // [[name, value], ...] or [name, value, name, value, ...]
        if (headers.length > 0 && Array.isArray(headers[0])) {
          for (const [n, v] of headers as Array<[string, string]>) res.appendHeader(n, v);
        } else {
          for (let i = 0; i + 1 < headers.length; i += 2) {
            res.appendHeader(String(headers[i]), String(headers[i + 1]));
          }
        }
      } else if (headers !== null && typeof headers === "object") {
        for (const [n, v] of Object.entries(headers as Record<string, unknown>)) {
          if (v !== undefined) res.setHeader(n, v as string | string[] | number);
        }
      }
      return res;
    };
    r["flushHeaders"] = function flushHeaders(): void {
      if (self.phase === "released") self.orig.flushHeaders.call(res);
    };
    r["write"] = function write(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
      if (self.phase === "released") {
        return (self.orig.write as (...a: unknown[]) => boolean).call(res, chunk, encoding, cb);
      }
      if (typeof encoding === "function") {
        cb = encoding;
        encoding = undefined;
      }
      self.hold(chunk, encoding as BufferEncoding | undefined);
      if (typeof cb === "function") self.callbacks.push(cb as Callback);
      return true;
    };
    r["end"] = function end(chunk?: unknown, encoding?: unknown, cb?: unknown): ServerResponse {
      if (self.phase === "released") {
        return (self.orig.end as (...a: unknown[]) => ServerResponse).call(res, chunk, encoding, cb);
      }
      if (self.phase === "ending") return res;
      if (typeof chunk === "function") {
        cb = chunk;
        chunk = undefined;
      } else if (typeof encoding === "function") {
        cb = encoding;
        encoding = undefined;
      }
      self.hold(chunk, encoding as BufferEncoding | undefined);
      if (typeof cb === "function") self.callbacks.push(cb as Callback);
      self.phase = "ending";
      const body = Buffer.concat(self.chunks);
      const stored: StoredResponse = {
        statusCode: res.statusCode,
        headers: headersOf(res),
        body,
        bodyOmitted: false,
      };
      if (self.sendFirst) {
        // Started before the send, so the execution counts as finished
        // when the response's "close" comes.
        const storing = self.onEnd(stored);
        self.send(body);
        storing.catch(() => undefined); // the observer is told
        return res;
      }
      self.onEnd(stored).then(
        () => self.send(body),
        () => self.send(body),
      );
      return res;
    };
  }

  /** True until the handler ended the response or passThrough() was called. */
  get capturing(): boolean {
    return this.phase === "capturing";
  }

  private hold(chunk: unknown, encoding: BufferEncoding | undefined): void {
    if (chunk === undefined || chunk === null) return;
    if (typeof chunk === "string") this.chunks.push(Buffer.from(chunk, encoding ?? "utf8"));
    else if (chunk instanceof Uint8Array) this.chunks.push(Buffer.from(chunk));
    else throw new TypeError("response chunks must be strings or bytes");
  }

  private restore(): void {
    this.phase = "released";
    const r = this.res as unknown as Record<string, unknown>;
    r["write"] = this.orig.write;
    r["end"] = this.orig.end;
    r["writeHead"] = this.orig.writeHead;
    r["flushHeaders"] = this.orig.flushHeaders;
  }

  private send(body: Buffer): void {
    this.restore();
    const callbacks = this.callbacks.splice(0);
    if (this.res.destroyed) return;
    this.res.end(body, () => {
      for (const cb of callbacks) cb();
    });
  }

  /** Gives the response back untouched; what was held is dropped. */
  passThrough(): void {
    if (this.phase !== "capturing") return;
    this.chunks.length = 0;
    this.callbacks.length = 0;
    this.restore();
  }
}
