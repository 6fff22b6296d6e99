import { parentPort, workerData } from 'node:worker_threads';
import { openSqliteWriter, toWireError, type SqliteWriterOptions } from './sqliteWriter.js';
import type { WriterRequest, WriterResponse } from './writerClient.js';
import { transferablesOf, type PackedReplies } from './packedBatch.js';

/** the writer thread: owns the store's write connection and answers the store's requests in order */
const port = parentPort!;
const writer = openSqliteWriter((workerData as { options: SqliteWriterOptions }).options);

const perform = (m: WriterRequest): unknown => {
  switch (m.op) {
    case 'append':
      return writer.append(m.batch);
    case 'checkpoint':
      return writer.saveCheckpoint(m.name, m.position);
    case 'seal':
      return writer.seal(m.streams);
    case 'ready':
      return undefined;
    case 'probe':
      return writer.probe();
    case 'close':
      return writer.close();
  }
};

port.on('message', (m: WriterRequest) => {
  let response: WriterResponse;
  try {
    response = { id: m.id, ok: true, value: perform(m) };
  } catch (error) {
    response = { id: m.id, ok: false, error: toWireError(error) };
  }
  // a packed reply's buffers are moved back, not copied
  port.postMessage(response, m.op === 'append' && response.ok ? transferablesOf(response.value as PackedReplies) : []);
  if (m.op === 'close') port.close();
});
