import type { StoredResponse } from "./types";

/**
 * `r` with buffers of its own: the client's copy shares no memory with the
 * received message, the in-memory service's none with its caller.
 */
export function copyStoredResponse(r: StoredResponse): StoredResponse {
  return {
    statusCode: r.statusCode,
    headers: r.headers.map((h) => ({ name: h.name, value: Buffer.from(h.value) })),
    body: Buffer.from(r.body),
    bodyOmitted: r.bodyOmitted,
  };
}
