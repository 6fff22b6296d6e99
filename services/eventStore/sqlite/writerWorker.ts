import { parentPort, workerData } from 'node:worker_threads';
import { openSqliteWriter, toWireError, type SqliteWriterOptions } from './sqliteWriter.js';
import type { WriterRequest, WriterResponse } from './writerClient.js';

/** the writer thread: owns the store's write connection and answers the store's requests in order */
const port = parentPort!;
const writer = openSqliteWriter((workerData as { options: SqliteWriterOptions }).options);

port.on('message', (m: WriterRequest) => {
  let response: WriterResponse;
  try {
    const value =
      m.op === 'append'
        ? writer.append(m.batch)
        : m.op === 'checkpoint'
          ? writer.saveCheckpoint(m.name, m.position)
          : m.op === 'seal'
            ? writer.seal()
            : m.op === 'ready'
              ? undefined
              : writer.close();
    response = { id: m.id, ok: true, value };
  } catch (error) {
    response = { id: m.id, ok: false, error: toWireError(error) };
  }
  port.postMessage(response);
  if (m.op === 'close') port.close();
});
