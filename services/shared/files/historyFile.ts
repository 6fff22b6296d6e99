import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseEventJson, type IommuEvent, type ValidationError } from '../../../schemas/index.js';

export type HistoryLine =
  | { readonly ok: true; readonly line: number; readonly event: IommuEvent }
  | { readonly ok: false; readonly line: number; readonly error: ValidationError };

/**
 * Streams a JSON Lines history file (or stdin for `-`), one parsed event or one named error per line.
 * Blank lines and `#` comments are skipped. Memory stays constant whatever the file size.
 */
export async function* readHistoryFile(path: string): AsyncGenerator<HistoryLine> {
  const input = path === '-' ? process.stdin : createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  for await (const text of lines) {
    n += 1;
    const trimmed = text.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const r = parseEventJson(trimmed, `${path}:${n}`);
    yield r.ok ? { ok: true, line: n, event: r.value } : { ok: false, line: n, error: r.error };
  }
}
