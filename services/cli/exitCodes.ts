import { isAppError, type ErrorKind } from '../../schemas/index.js';

/**
 * The CLI's exit codes, in one table (documented in the README):
 * 0 success · 1 a finding (regression, violation, failed verification) or an unexpected error ·
 * 2 bad input or usage · 3 not found · 4 conflict · 69 an engine is unavailable (EX_UNAVAILABLE).
 */
export const EXIT = { ok: 0, finding: 1, badInput: 2, notFound: 3, conflict: 4, unavailable: 69 } as const;

const byKind: Record<ErrorKind, number> = {
  validation: EXIT.badInput,
  illegal_state: EXIT.badInput,
  not_found: EXIT.notFound,
  conflict: EXIT.conflict,
  unavailable: EXIT.unavailable,
};

export const exitCodeFor = (error: unknown): number => (isAppError(error) ? byKind[error.kind] : EXIT.finding);

/** one line on stderr; the stack only with --verbose */
export const reportError = (error: unknown, verbose: boolean): number => {
  const code = exitCodeFor(error);
  const message = error instanceof Error ? error.message : String(error);
  console.error(`iommutrail: ${message}`);
  if (verbose && error instanceof Error && error.stack) console.error(error.stack);
  return code;
};
