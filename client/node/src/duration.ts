/**
 * Durations: milliseconds as numbers, or Go-style text ("500ms", "2s",
 * "1m30s"), as the example apps' flags take them.
 */

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** A duration given either as milliseconds or as Go-style text. */
export type DurationInput = number | string;

/**
 * Parses a Go-style duration ("0", "500ms", "2s", "1m30s", "1.5h") into
 * milliseconds. Throws a RangeError naming the text when it is not one.
 */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === "0") return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  let sign = 1;
  if (s.startsWith("-") || s.startsWith("+")) {
    sign = s.startsWith("-") ? -1 : 1;
    pos = 1;
  }
  if (pos >= s.length) throw new RangeError(`invalid duration "${text}"`);
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (m === null) throw new RangeError(`invalid duration "${text}"`);
    total += Number(m[1]) * (UNITS[m[2] as string] as number);
    pos = re.lastIndex;
  }
  return sign * total;
}

/** Milliseconds of a DurationInput (numbers are milliseconds already). */
export function toMillis(d: DurationInput): number {
  const ms = typeof d === "number" ? d : parseDuration(d);
  if (!Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`invalid duration ${JSON.stringify(d)}`);
  }
  return ms;
}
