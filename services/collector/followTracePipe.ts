import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/**
 * Follows a tracefs trace_pipe without blocking a thread: opened O_NONBLOCK, read until EAGAIN, then polled
 * every `intervalMs`. A blocking read would hold a libuv thread (and the process) until the next trace line, and a
 * stop would lose what that read returns; here, once `signal` aborts, the ring buffer is read until empty and the
 * generator ends, so every line the kernel wrote before the stop is delivered. Each read that finds the buffer empty
 * yields a {@link TraceReadEmpty} with the time it started (the collector holds uevents until one started after
 * them). A regular file (a recorded capture) ends at its end.
 */
export async function* followTracePipe(path: string, signal: AbortSignal, intervalMs = 100): AsyncGenerator<Buffer | TraceReadEmpty> {
  const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const buf = Buffer.alloc(1 << 16);
  try {
    for (;;) {
      const startedAt = process.hrtime.bigint();
      let n: number;
      try {
        n = (await file.read(buf, 0, buf.length, null)).bytesRead;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
        yield { emptyReadStartedNs: startedAt };
        if (signal.aborted) return;
        await new Promise<void>((resolve) => {
          const wake = (): void => {
            clearTimeout(t);
            signal.removeEventListener('abort', wake);
            resolve();
          };
          const t = setTimeout(wake, intervalMs);
          signal.addEventListener('abort', wake);
        });
        continue;
      }
      if (n === 0) return;
      yield Buffer.from(buf.subarray(0, n));
    }
  } finally {
    await file.close();
  }
}

/** yielded by {@link followTracePipe} when a read found the ring buffer empty: every line written before `emptyReadStartedNs` was yielded before it */
export interface TraceReadEmpty {
  /** process.hrtime (CLOCK_MONOTONIC) when that read started */
  readonly emptyReadStartedNs: bigint;
}
