/** The request fingerprint (docs/semantics.md, "The fingerprint"). */

import { createHash } from "node:crypto";

function bytes(part: string | Buffer): Buffer {
  return typeof part === "string" ? Buffer.from(part, "utf8") : part;
}

/**
 * SHA-256 over method, target and body, each written as its length (an
 * unsigned 64-bit little-endian integer) followed by its bytes. Strings are
 * hashed as their UTF-8 bytes; nothing is normalised. Returns the raw 32
 * bytes, as ReserveRequest.fingerprint takes them.
 */
export function fingerprint(
  method: string | Buffer,
  target: string | Buffer,
  body: Buffer,
): Buffer {
  const h = createHash("sha256");
  for (const part of [bytes(method), bytes(target), body]) {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(part.length));
    h.update(len);
    h.update(part);
  }
  return h.digest();
}
