import { replayHistory, type ReplayReport } from '../../../replay/index.js';
import { hostStreamName } from '../../../schemas/index.js';
import type { EventStore } from '../../shared/eventStore/eventStore.js';
import { yieldingEach } from './admission.js';

/** one host's recorded history re-decided: what `POST /v1/hosts/:host/replay` asks for, parsed */
export interface ReplayJob {
  readonly host: string;
  /** a variant or release stage by name (`stage2`, `upstream@6.1`), checked by the route */
  readonly variant: string;
  readonly compareWith?: string;
  readonly from?: bigint;
  readonly to?: bigint;
}

export interface ReplayJobResult {
  readonly report: ReplayReport;
  /** events of the host within [from, to]: none means nothing to replay */
  readonly seen: number;
}

/** reads the host's stream from `store` and replays it, giving the event loop a turn as it goes */
export const runReplayJob = async (store: EventStore, job: ReplayJob): Promise<ReplayJobResult> => {
  let seen = 0;
  const events = async function* () {
    for await (const r of yieldingEach(store.readStream(hostStreamName(job.host)))) {
      const t = BigInt(r.event.time);
      if (job.from !== undefined && t < job.from) continue;
      if (job.to !== undefined && t > job.to) break;
      seen += 1;
      yield r;
    }
  };
  const report = await replayHistory({
    variant: job.variant,
    ...(job.compareWith ? { compareWith: job.compareWith } : {}),
    events: events(),
    source: hostStreamName(job.host),
  });
  return { report, seen };
};
