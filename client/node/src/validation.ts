/** The value rules of docs/semantics.md, "Limits". */

/** Longest tenant name. */
export const MAX_TENANT_NAME_BYTES = 64;
/** Default longest Idempotency-Key. */
export const DEFAULT_MAX_KEY_BYTES = 256;
/** Longest attempt id. */
export const MAX_ATTEMPT_ID_BYTES = 128;

function excerpt(value: Buffer): string {
  const max = 40;
  let out = '"';
  for (let i = 0; i < value.length && i < max; i++) {
    const c = value[i] as number;
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) {
      out += String.fromCharCode(c);
    } else {
      out += "\\x" + c.toString(16).padStart(2, "0");
    }
  }
  return out + (value.length > max ? '"...' : '"');
}

/**
 * Checks that `value` is minBytes..maxBytes of printable ASCII (0x21-0x7E).
 * Returns null when it is, else the reason, naming `field`, in the words of
 * the C++ rules (`key "my key" has byte 0x20 at offset 2; ...`).
 */
export function checkPrintable(
  field: string,
  value: string | Buffer,
  minBytes: number,
  maxBytes: number,
): string | null {
  const b = typeof value === "string" ? Buffer.from(value, "utf8") : value;
  const rule = `it must be ${minBytes}-${maxBytes} bytes of printable ASCII (0x21-0x7E)`;
  if (b.length < minBytes || b.length > maxBytes) {
    return `${field} is ${b.length} bytes; ${rule}`;
  }
  for (let i = 0; i < b.length; i++) {
    const c = b[i] as number;
    if (c < 0x21 || c > 0x7e) {
      return `${field} ${excerpt(b)} has byte 0x${c.toString(16).padStart(2, "0")} at offset ${i}; ${rule}`;
    }
  }
  return null;
}

/** Null when `key` is a valid Idempotency-Key, else the reason. */
export function checkKey(
  key: string | Buffer,
  maxKeyBytes: number = DEFAULT_MAX_KEY_BYTES,
): string | null {
  return checkPrintable("key", key, 1, maxKeyBytes);
}

function isLowerOrDigit(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39);
}

/** Null when `name` is a valid tenant name, else the reason. */
export function checkTenantName(name: string | Buffer): string | null {
  const b = typeof name === "string" ? Buffer.from(name, "utf8") : name;
  const rule =
    "a tenant name is 1-64 characters of [a-z0-9._-] starting with a letter or digit";
  if (b.length === 0 || b.length > MAX_TENANT_NAME_BYTES) {
    return `tenant name is ${b.length} bytes; ${rule}`;
  }
  if (!isLowerOrDigit(b[0] as number)) {
    return `tenant name ${excerpt(b)} starts with a bad character; ${rule}`;
  }
  for (const c of b) {
    if (!isLowerOrDigit(c) && c !== 0x2e && c !== 0x5f && c !== 0x2d) {
      return `tenant name ${excerpt(b)} has a bad character; ${rule}`;
    }
  }
  return null;
}
