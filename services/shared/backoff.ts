/**
 * Exponential backoff with full jitter, the one retry delay of the shell: a fleet of collectors, or a sink
 * waiting for its engine, does not hammer a service that comes back. `random` is injected so tests are exact.
 */
export const backoffDelay = (attempt: number, initialMs: number, maxMs: number, random: () => number): number =>
  Math.round(random() * Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30)));
