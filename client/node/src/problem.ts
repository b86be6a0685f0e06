/** RFC 7807 problem documents for the core's rejections (HTTP). */

import type { Rejection, RejectReason } from "./core";

/** The HTTP status of each rejection reason. */
export const HTTP_STATUS: Record<RejectReason, number> = {
  "missing-tenant": 401,
  "missing-key": 400,
  "malformed-key": 400,
  "in-progress": 409,
  "key-reused": 422,
  unavailable: 503,
  internal: 500,
};

/** An HTTP reply for a rejection: status, headers, body. */
export interface ProblemReply {
  status: number;
  headers: Array<[string, string]>;
  body: Buffer;
}

/**
 * `{"type":"urn:idemkey:<reason>","title":…,"status":…,"detail":…}` and a
 * newline, as application/problem+json; 409s carry Retry-After.
 */
export function problemReply(r: Rejection): ProblemReply {
  const status = HTTP_STATUS[r.reason];
  const headers: Array<[string, string]> = [["Content-Type", "application/problem+json"]];
  if (r.reason === "in-progress") headers.push(["Retry-After", String(r.retryAfterSeconds)]);
  const body = JSON.stringify({
    type: `urn:idemkey:${r.reason}`,
    title: r.title,
    status,
    detail: r.detail,
  });
  return { status, headers, body: Buffer.from(body + "\n", "utf8") };
}
