import { isAppError, type ErrorKind } from '../../schemas/index.js';
import { convertSqliteError } from '../shared/eventStore/sqlite/sqliteWriter.js';

/**
 * The CLI's exit codes, in one table (documented in the README):
 * 0 success · 1 a finding (regression, violation, failed verification, not viable) · 2 bad input or usage ·
 * 3 not found · 4 conflict · 5 undecided (the input cannot settle the question: `diagnose`'s unknown verdict) ·
 * 69 an engine is unavailable (EX_UNAVAILABLE) · 70 an unexpected error, a defect of iommutrail (EX_SOFTWARE): never
 * 1, so a script cannot read a crash as a finding ("not viable", "tampered").
 */
export const EXIT = { ok: 0, finding: 1, badInput: 2, notFound: 3, conflict: 4, undecided: 5, unavailable: 69, internal: 70 } as const;

const byKind: Record<ErrorKind, number> = {
  validation: EXIT.badInput,
  illegal_state: EXIT.badInput,
  not_found: EXIT.notFound,
  conflict: EXIT.conflict,
  unavailable: EXIT.unavailable,
};

// a path the user gave that cannot be used is bad input, not a finding
const FILE_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EISDIR: 'is a directory, expected a file',
  ENOTDIR: 'not a directory',
  EACCES: 'permission denied',
  EEXIST: 'already exists',
  SQLITE_NOTADB: 'not an iommutrail store (not a SQLite database)',
  SQLITE_CANTOPEN: 'cannot open the database file',
};

const fileErrorOf = (error: unknown): string | undefined => {
  if (!(error instanceof Error) || !('code' in error) || typeof error.code !== 'string') return undefined;
  const what = FILE_ERRORS[error.code];
  if (what === undefined) return undefined;
  const where = 'path' in error && typeof error.path === 'string' ? `${error.path}: ` : '';
  return `${where}${what}`;
};

export const exitCodeFor = (error: unknown): number => {
  if (isAppError(error)) return byKind[error.kind];
  if (fileErrorOf(error) !== undefined) return EXIT.badInput;
  // an engine's own error that escaped its adapter (a SQLite file locked by another process, a full disk)
  const converted = convertSqliteError(error);
  return isAppError(converted) ? byKind[converted.kind] : EXIT.internal;
};

/** one line on stderr; the stack only with --verbose */
export const reportError = (error: unknown, verbose: boolean): number => {
  const code = exitCodeFor(error);
  const message = fileErrorOf(error) ?? (error instanceof Error ? error.message : String(error));
  console.error(`iommutrail: ${message}`);
  if (verbose && error instanceof Error && error.stack) console.error(error.stack);
  return code;
};
