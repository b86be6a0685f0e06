/**
 * The idempotency middleware for Express (4.x; 5.x should work too).
 *
 *   const keys = new Client({ address: "127.0.0.1:50051" });
 *   app.post("/v1/charges", idempotency(keys, { requireKey: true }), createCharge);
 *
 * For each covered request (POST, PUT, PATCH, DELETE, not excluded) it reads
 * the raw body itself (req.body is then that Buffer: mount it before any
 * body parser, which will then leave the body alone), asks the key service,
 * and replays, rejects (application/problem+json) or runs the rest of the
 * chain, holding the response back until it is stored. A handler that
 * throws or passes an error to next() releases the key before Express
 * answers the error (500); an async handler must pass its error to next().
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { type CoreOptions, type Decision, type Execution, IdempotencyCore } from "./core";
import { problemReply } from "./problem";
import { ResponseCapture, sendStored } from "./http-response";
import { tenantNameFor } from "./tenant-name";
import type { KeyService } from "./types";

/** Options of the Express middleware: the core's and these. */
export interface ExpressIdempotencyOptions extends CoreOptions {
  /**
   * The request's tenant ("" for none). Default: the X-Org-Id header mapped
   * by tenantNameFor.
   */
  tenant?: (req: Request) => string;
  /** Largest body read, bytes; larger ones are refused with 413. Default 16 MiB. */
  maxBodyBytes?: number;
  /**
   * Send the response before storing it (docs/semantics.md, "Storing after
   * the response"): the app's client does not wait for the second durable
   * write. Until it lands an immediate retry gets 409 (or waits, with
   * waitForResult); if the process dies first, a retry runs the handler
   * again once the lease lapses. The store is a pending promise, which keeps
   * Node running until it settles (unless the app calls process.exit).
   * Default false.
   */
  storeAfterResponse?: boolean;
}

/** Default tenant function: X-Org-Id through tenantNameFor (bytes as sent). */
export function orgIdTenant(req: IncomingMessage): string {
  const v = req.headers["x-org-id"];
  if (typeof v !== "string" || v === "") return "";
  return tenantNameFor(Buffer.from(v, "latin1"));
}

/** The path of a request target, without the query, percent-decoded. */
export function routeOf(target: string): string {
  const q = target.search(/[?#]/);
  const path = q < 0 ? target : target.slice(0, q);
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

const kBody = Symbol.for("idemkey.rawBody");
const kOnError = Symbol.for("idemkey.onHandlerError");
const kPatched = Symbol.for("idemkey.layerPatched");

type ErrorHook = (err: unknown) => Promise<void>;
type Layerish = Record<string | symbol, unknown>;

/**
 * Makes Express tell this middleware of errors that leave a handler after
 * it (thrown, or passed to next()): each Layer's request handler gets a
 * `next` that calls the request's hook first. Installed once per Express
 * copy, found through the app's own router so the app's copy is patched.
 */
function installErrorHook(req: Request): void {
  const app = req.app as unknown as Record<string, unknown> | undefined;
  const router = (app?.["_router"] ?? app?.["router"]) as { stack?: unknown[] } | undefined;
  const first = router?.stack?.[0];
  if (first === undefined || first === null) return;
  const proto = Object.getPrototypeOf(first) as Layerish;
  if (proto[kPatched]) return;
  for (const name of ["handle_request", "handleRequest"]) {
    const orig = proto[name];
    if (typeof orig !== "function") continue;
    proto[name] = function patched(this: unknown, rq: Layerish, rs: unknown, next: NextFunction) {
      if (typeof rq[kOnError] !== "function") return orig.call(this, rq, rs, next);
      const wrapped = function (this: unknown, err?: unknown): void {
        const hook = rq[kOnError] as ErrorHook | undefined;
        if (err !== undefined && err !== null && err !== "route" && err !== "router" && hook) {
          delete rq[kOnError];
          hook(err).then(
            () => next(err),
            () => next(err),
          );
          return;
        }
        // eslint-disable-next-line prefer-rest-params
        (next as (...a: unknown[]) => void).apply(this, arguments as unknown as unknown[]);
      };
      return orig.call(this, rq, rs, wrapped);
    };
  }
  proto[kPatched] = true;
}

/** Reads the whole body of `req` (at most `max` bytes). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > max) {
        const err = Object.assign(new Error(`request body over ${max} bytes`), {
          status: 413,
          statusCode: 413,
          type: "entity.too.large",
          expose: true,
        });
        req.removeAllListeners("data");
        req.resume();
        reject(err);
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

async function bodyOf(req: Request, max: number): Promise<Buffer> {
  const r = req as unknown as Layerish;
  const held = r[kBody];
  if (Buffer.isBuffer(held)) return held;
  // Already read by a body parser: only its raw form will do.
  if (req.readableEnded || r["_body"] === true) {
    if (Buffer.isBuffer(req.body)) return req.body;
    if (typeof req.body === "string") return Buffer.from(req.body, "utf8");
    if (req.body === undefined && !req.readableEnded) return Buffer.alloc(0);
    throw new Error(
      "idempotency: the request body was parsed before the middleware; mount idempotency() before body parsers (or use express.raw())",
    );
  }
  const body = await readBody(req, max);
  r[kBody] = body;
  // body-parser skips a request whose body was read (req._body).
  r["_body"] = true;
  req.body = body;
  return body;
}

function sendProblem(res: ServerResponse, d: Extract<Decision, { action: "reject" }>): void {
  const p = problemReply(d.rejection);
  res.statusCode = p.status;
  for (const [n, v] of p.headers) res.setHeader(n, v);
  res.end(p.body);
}

function run(req: Request, res: Response, next: NextFunction, execution: Execution, storeAfter: boolean): void {
  const capture = new ResponseCapture(
    res,
    async (stored) => {
      delete (req as unknown as Layerish)[kOnError];
      // The response goes out whatever the key service says now; a lost
      // lease only means this answer is not the one stored.
      await execution.finish(stored);
    },
    storeAfter,
  );
  const onError: ErrorHook = async () => {
    if (!capture.capturing) return;
    capture.passThrough();
    await execution.release();
  };
  (req as unknown as Layerish)[kOnError] = onError;
  // A client gone before the handler answered: nothing was sent, release.
  res.on("close", () => {
    if (!execution.finished) {
      delete (req as unknown as Layerish)[kOnError];
      void execution.release();
    }
  });
  installErrorHook(req);
  next();
}

/**
 * The middleware: `app.use(idempotency(keys, options))`, or per route.
 * `keys` is a Client (one per process) or an InMemoryKeyService.
 */
export function idempotency(keys: KeyService, options: ExpressIdempotencyOptions = {}): RequestHandler {
  const core = new IdempotencyCore(keys, {
    notFinalStatuses: [429, 503],
    ...options,
  });
  const tenantOf = options.tenant ?? orgIdTenant;
  const maxBody = options.maxBodyBytes ?? 16 * 1024 * 1024;
  return function idempotencyMiddleware(req: Request, res: Response, next: NextFunction): void {
    const target = req.originalUrl;
    const route = routeOf(target);
    const covered = core.covers(req.method, route);
    (async () => {
      const body = covered ? await bodyOf(req, maxBody) : Buffer.alloc(0);
      const keyHeader = req.headers["idempotency-key"];
      const d = await core.begin({
        method: req.method,
        route,
        target,
        tenant: tenantOf(req),
        key: typeof keyHeader === "string" ? keyHeader : undefined,
        body,
      });
      switch (d.action) {
        case "bypass":
          next();
          return;
        case "replay":
          sendStored(res, d.response);
          return;
        case "reject":
          sendProblem(res, d);
          return;
        case "run":
          run(req, res, next, d.execution, options.storeAfterResponse ?? false);
          return;
      }
    })().catch(next);
  };
}
