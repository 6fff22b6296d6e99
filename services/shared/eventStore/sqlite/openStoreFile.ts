import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { IllegalStateError, UnavailableError, isAppError } from '../../../../schemas/index.js';
import { convertSqliteError } from './sqliteWriter.js';
import { migrate, READ_ONLY_MIN_VERSION, SCHEMA_VERSION } from './migrations.js';

export interface OpenStoreFileOptions {
  readonly readOnly: boolean;
  readonly durability: 'full' | 'normal';
  /** how long to wait for another connection's lock before giving up @defaultValue 5000 */
  readonly busyTimeoutMs?: number;
  /**
   * `PRAGMA quick_check` runs at open on files up to this size (it reads every page: about a second per few
   * hundred MiB here); larger files skip it and say so @defaultValue 256 MiB
   */
  readonly quickCheckMaxBytes?: number;
}

/** what the start-up check found: `checked: false` when the file was too large to check within the budget */
export interface StoreIntegrity {
  readonly checked: boolean;
  readonly bytes: number;
  readonly ms: number;
}

const DEFAULT_QUICK_CHECK_MAX_BYTES = 256 * 1024 * 1024;
const CORRUPT_CODES = /^SQLITE_(NOTADB|CORRUPT)(_|$)/;

const codeOf = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
};

/** any failure while opening, named after the file: corrupt → illegal state (exit 2), locked/busy/I/O → unavailable (69) */
const convertOpenError = (path: string, error: unknown): unknown => {
  if (isAppError(error)) return error;
  const code = codeOf(error);
  if (code !== undefined && CORRUPT_CODES.test(code)) {
    return new IllegalStateError(`${path}: not a readable iommutrail store (${(error as Error).message}); restore it from a backup, or move it away to start a new store`, { cause: error });
  }
  const converted = convertSqliteError(error);
  if (isAppError(converted)) {
    return new UnavailableError(`${path}: cannot open the store (${(error as Error).message})${/BUSY|LOCKED/.test(code ?? '') ? ': another process holds it locked' : ''}`, { cause: error });
  }
  return error;
};

/** reads every page's structure (not the index contents): a torn or overwritten page is found here, not mid-read later */
const quickCheck = (db: Database.Database, path: string, maxBytes: number): StoreIntegrity => {
  let bytes = 0;
  for (const f of [path, `${path}-wal`]) if (existsSync(f)) bytes += statSync(f).size;
  if (bytes > maxBytes) return { checked: false, bytes, ms: 0 };
  const started = performance.now();
  let found: string[];
  try {
    found = (db.pragma('quick_check(20)') as { quick_check: string }[]).map((r) => r.quick_check).filter((m) => m !== 'ok');
  } catch (e) {
    // a page too damaged to walk fails the check itself
    if (!CORRUPT_CODES.test(codeOf(e) ?? '')) throw e;
    found = [(e as Error).message];
  }
  if (found.length > 0) {
    throw new IllegalStateError(`${path}: the store file is corrupt (SQLite quick_check: ${found.slice(0, 3).join('; ')}${found.length > 3 ? '; ...' : ''}); restore it from a backup`);
  }
  return { checked: true, bytes, ms: performance.now() - started };
};

/**
 * Opens (and, when writable, migrates) the store's SQLite file, refusing what must not be opened silently:
 * - an existing file that holds no store (zero length, or a database without our schema): opening it would
 *   start a new, empty store in its place while everything derived from the old one still serves it;
 * - a file SQLite cannot read, or one whose pages fail `PRAGMA quick_check` (bounded by size);
 * and naming the file in every error.
 */
export const openStoreFile = (path: string, options: OpenStoreFileOptions): { db: Database.Database; integrity: StoreIntegrity } => {
  const existed = existsSync(path);
  if (!options.readOnly) mkdirSync(dirname(path), { recursive: true });
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: options.readOnly, fileMustExist: options.readOnly });
  } catch (e) {
    throw new UnavailableError(`cannot open store ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    db.defaultSafeIntegers(true);
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    const version = Number(db.pragma('user_version', { simple: true }) as bigint);
    if (existed && version === 0) {
      const size = statSync(path).size;
      throw new IllegalStateError(
        `${path}: exists but holds no iommutrail store (${size === 0 ? 'zero length' : `${size} bytes, no store schema`}); refusing to start a new store in its place. Restore it from a backup, or move it away to start afresh (derived state in the same folder must go too)`,
      );
    }
    if (options.readOnly) {
      if (version < READ_ONLY_MIN_VERSION || version > SCHEMA_VERSION) {
        throw new IllegalStateError(`${path}: store schema v${version}, this build reads v${READ_ONLY_MIN_VERSION} to v${SCHEMA_VERSION}`);
      }
    } else {
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`);
    }
    const integrity = existed ? quickCheck(db, path, options.quickCheckMaxBytes ?? DEFAULT_QUICK_CHECK_MAX_BYTES) : { checked: true, bytes: 0, ms: 0 };
    if (!options.readOnly) migrate(db);
    return { db, integrity };
  } catch (e) {
    db.close();
    throw convertOpenError(path, e);
  }
};
