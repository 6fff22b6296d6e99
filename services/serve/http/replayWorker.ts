import { parentPort, workerData } from 'node:worker_threads';
import { getSqliteEventStore } from '../../shared/eventStore/index.js';
import { runReplayJob, type ReplayJob } from './replayJob.js';

/** a replay thread: its own read-only connection to the store, one job at a time, answered by id */
const port = parentPort!;
const store = getSqliteEventStore({ path: (workerData as { path: string }).path, readOnly: true });

port.on('message', (m: { id: number; job: ReplayJob }) => {
  runReplayJob(store, m.job).then(
    (value) => port.postMessage({ id: m.id, ok: true, value }),
    (error: unknown) => port.postMessage({ id: m.id, ok: false, message: error instanceof Error ? error.message : String(error) }),
  );
});
