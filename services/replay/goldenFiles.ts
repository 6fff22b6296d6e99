import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { GoldenFile } from '../../replay/index.js';
import { ValidationError } from '../../schemas/index.js';

/** `corpus/s07-replace.jsonl` → `corpus/s07-replace.golden.json` (or in `goldenDir`) */
export const goldenPathFor = (history: string, goldenDir?: string): string =>
  join(goldenDir ?? dirname(history), `${basename(history).replace(/\.jsonl?$/, '')}.golden.json`);

export const readGoldenFile = (path: string): GoldenFile | null => {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as GoldenFile;
  } catch (e) {
    throw new ValidationError(`${path}: not a valid golden file: ${(e as Error).message}`, [{ path, message: 'invalid JSON' }]);
  }
};

export const writeGoldenFile = (path: string, golden: GoldenFile): void => writeFileSync(path, `${JSON.stringify(golden, null, 2)}\n`);
