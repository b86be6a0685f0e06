/** What the middleware tells the app (docs/semantics.md, "Seeing what the middleware does"). */

import type { KeyServiceError } from "./errors";

/** Every event name, as the C++ EventName spells them. */
export const EVENT_KINDS = [
  "bypass",
  "run",
  "replay",
  "in_progress",
  "mismatch",
  "rejected_key",
  "missing_tenant",
  "unavailable",
  "fail_open_run",
  "service_error",
  "stored",
  "body_omitted",
  "released",
  "finish_failed",
  "lease_lost",
] as const;

/** One of EVENT_KINDS. */
export type EventKind = (typeof EVENT_KINDS)[number];

/** One decision or finish of the middleware. */
export interface MiddlewareEvent {
  kind: EventKind;
  /** The request's tenant ("" when none). */
  tenant: string;
  /** The request's route ("" for a heartbeat's lease_lost). */
  route: string;
  /** Time spent in the key service for this step, ms. */
  elapsedMs: number;
  /** The key service's error, when there was one (its message is here only). */
  serviceError?: KeyServiceError;
}

/** Told of every event; must be quick and must not throw. */
export type Observer = (event: MiddlewareEvent) => void;
