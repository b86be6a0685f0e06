/** TenantNameFor (docs/semantics.md, "Tenants and auth"). */

import { createHash } from "node:crypto";
import { checkTenantName, MAX_TENANT_NAME_BYTES } from "./validation";

const HASH_HEX = 16;
const MAX_READABLE = MAX_TENANT_NAME_BYTES - 2 - HASH_HEX;

function looksMapped(name: Buffer): boolean {
  if (name.length < HASH_HEX + 2) return false;
  const tail = name.subarray(name.length - HASH_HEX - 2);
  if (tail[0] !== 0x2d || tail[1] !== 0x2d) return false;
  for (const c of tail.subarray(2)) {
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/**
 * Maps any organisation id to a valid tenant name, the same one every time
 * and in every language: a valid name that does not look mapped stays as it
 * is; any other id becomes its readable part (ASCII letters lower-cased and
 * digits, every other run of bytes one '-', at most 46 characters), "--",
 * and the first 16 hex digits of the SHA-256 of its bytes. The empty id
 * maps to "" (no tenant).
 *
 * A string is taken as its UTF-8 bytes. HTTP header values arrive in
 * Node.js as latin1 strings: pass `Buffer.from(value, "latin1")` to map the
 * bytes the client sent.
 */
export function tenantNameFor(orgId: string | Buffer): string {
  const id = typeof orgId === "string" ? Buffer.from(orgId, "utf8") : orgId;
  if (id.length === 0) return "";
  if (checkTenantName(id) === null && !looksMapped(id)) {
    return id.toString("latin1");
  }
  let readable = "";
  for (const c of id) {
    const lower = c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
    const alnum =
      (lower >= 0x61 && lower <= 0x7a) || (lower >= 0x30 && lower <= 0x39);
    if (alnum) {
      readable += String.fromCharCode(lower);
    } else if (readable.length > 0 && !readable.endsWith("-")) {
      readable += "-";
    }
    if (readable.length === MAX_READABLE) break;
  }
  readable = readable.replace(/-+$/, "");
  if (readable.length === 0) readable = "org";
  const hash = createHash("sha256").update(id).digest("hex").slice(0, HASH_HEX);
  return `${readable}--${hash}`;
}
