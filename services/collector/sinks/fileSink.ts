import { open, type FileHandle } from 'node:fs/promises';
import { UnavailableError, type IommuEvent } from '../../../schemas/index.js';
import type { DeliveryResult, EventSink } from './eventSink.js';

export interface FileSinkOptions {
  /** a file (appended to, created if missing), a device such as a serial port, or `-` for stdout */
  readonly path: string;
}

/**
 * Writes the shipped events as JSON Lines, a history `iommutrail ingest <file>` accepts (an air-gapped host, a
 * guest's serial port). A batch is acknowledged once written, and flushed to disk when the path is a regular file, so the
 * spool keeps its durability: an event leaves the spool only after it is in the file. A crash between the write and
 * the acknowledgement writes the batch again on restart; the ingest counts those lines as duplicates (same ids).
 */
export const createFileSink = (options: FileSinkOptions): EventSink => {
  let handle: FileHandle | undefined;
  let regular = false;
  const toStdout = options.path === '-';
  const write = async (text: string): Promise<void> => {
    if (toStdout) {
      await new Promise<void>((resolve, reject) => process.stdout.write(text, (e) => (e ? reject(e) : resolve())));
      return;
    }
    if (!handle) {
      handle = await open(options.path, 'a');
      regular = (await handle.stat()).isFile();
    }
    await handle.write(text);
    // a tty or a pipe has nothing to flush (fsync would fail with EINVAL)
    if (regular) await handle.datasync();
  };
  return {
    name: `file ${options.path}`,
    async send(events: readonly IommuEvent[]): Promise<DeliveryResult[]> {
      try {
        await write(events.map((e) => JSON.stringify(e)).join('\n') + '\n');
      } catch (error) {
        throw new UnavailableError(`write ${options.path}: ${(error as Error).message}`, { cause: error });
      }
      return events.map((e) => ({ id: e.id, status: 'accepted' as const }));
    },
    async close(): Promise<void> {
      await handle?.close();
      handle = undefined;
    },
  };
};
