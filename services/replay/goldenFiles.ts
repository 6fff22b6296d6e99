import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { GoldenFile } from '../../replay/index.js';
import { ValidationError } from '../../schemas/index.js';

/** `corpus/s07-replace.jsonl` → `corpus/s07-replace.golden.json` (or in `goldenDir`) */
export const goldenPathFor = (history: string, goldenDir?: string): string =>
  join(goldenDir ?? dirname(history), `${basename(history).replace(/\.jsonl?$/, '')}.golden.json`);

/** a golden file as stored: the replay results, and the digest of the history they were recorded from */
export type StoredGoldenFile = GoldenFile & {
  /** sha256 (hex) of the history file's bytes when the golden was written; tells a changed history from a changed model */
  readonly historySha256?: string;
};

/** sha256 (hex) of a history file's bytes */
export const historyDigest = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

export const readGoldenFile = (path: string): StoredGoldenFile | null => {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as StoredGoldenFile;
  } catch (e) {
    throw new ValidationError(`${path}: not a valid golden file: ${(e as Error).message}`, [{ path, message: 'invalid JSON' }]);
  }
};

export const writeGoldenFile = (path: string, golden: StoredGoldenFile): void => writeFileSync(path, `${JSON.stringify(golden, null, 2)}\n`);
