import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { followTracePipe, type TraceReadEmpty } from './followTracePipe.js';

describe('followTracePipe', () => {
  it('issue 17/19 order: given a pipe with a writer, when read, then each read that finds it empty says when it started, after every line written before that', async () => {
    // a FIFO with a writer open behaves as trace_pipe does: EAGAIN while empty, the lines once written
    const fifo = join(mkdtempSync(join(tmpdir(), 'follow-trace-')), 'trace_pipe');
    execFileSync('mkfifo', [fifo]);
    const writer = openSync(fifo, 'r+');
    const stop = new AbortController();
    const seen: (string | TraceReadEmpty)[] = [];
    try {
      const before = process.hrtime.bigint();
      for await (const chunk of followTracePipe(fifo, stop.signal, 10)) {
        seen.push(Buffer.isBuffer(chunk) ? chunk.toString('utf8') : chunk);
        if (seen.length === 1) writeSync(writer, 'line 1\n');
        if (Buffer.isBuffer(chunk)) stop.abort();
      }
      const empties = seen.filter((c): c is TraceReadEmpty => typeof c !== 'string');
      expect(seen.filter((c) => typeof c === 'string')).toEqual(['line 1\n']);
      // the first read found nothing; the line came next; the last read (after the stop) found the pipe empty again
      expect(typeof seen[0]).toBe('object');
      expect(typeof seen.at(-1)).toBe('object');
      expect(empties.every((e) => e.emptyReadStartedNs >= before)).toBe(true);
      expect(empties.at(-1)!.emptyReadStartedNs).toBeGreaterThan(empties[0]!.emptyReadStartedNs);
    } finally {
      closeSync(writer);
    }
  });
});
