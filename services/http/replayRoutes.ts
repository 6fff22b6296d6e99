import { Router } from 'express';
import { z } from 'zod';
import { VARIANT_NAMES, replayHistory } from '../../replay/index.js';
import { NotFoundError, hostStreamName } from '../../schemas/index.js';
import type { EventStore } from '../eventStore/eventStore.js';
import { yieldingEach } from './admission.js';
import { HostParam, TimeNsParam, parseParams } from './params.js';
import { handle } from './problem.js';

/**
 * `POST /v1/hosts/:host/replay?variant=stage2[&compareWith=upstream][&from=&to=]`: the host's recorded
 * history re-decided by a protocol model, with every divergence (root cause first). Reads only: the
 * read role is enough.
 */
export const createReplayRouter = (deps: { store: EventStore }): Router => {
  const router = Router();
  const Variant = z.enum(VARIANT_NAMES as unknown as [string, ...string[]], { error: `expected a variant: ${VARIANT_NAMES.join(', ')}` });
  router.post(
    '/v1/hosts/:host/replay',
    handle(async (req, res) => {
      const host = parseParams(HostParam, req.params.host, 'path');
      const q = parseParams(
        z.strictObject({ variant: Variant, compareWith: Variant.optional(), from: TimeNsParam.optional(), to: TimeNsParam.optional() }),
        req.query,
        'query',
      );
      let seen = 0;
      const events = async function* () {
        for await (const r of yieldingEach(deps.store.readStream(hostStreamName(host)))) {
          const t = BigInt(r.event.time);
          if (q.from !== undefined && t < q.from) continue;
          if (q.to !== undefined && t > q.to) break;
          seen += 1;
          yield r;
        }
      };
      const report = await replayHistory({
        variant: q.variant as (typeof VARIANT_NAMES)[number],
        ...(q.compareWith ? { compareWith: q.compareWith as (typeof VARIANT_NAMES)[number] } : {}),
        events: events(),
        source: hostStreamName(host),
      });
      if (seen === 0) throw new NotFoundError(`host ${host}: no events recorded${q.from !== undefined || q.to !== undefined ? ' in that time range' : ''}`);
      res.json(report);
    }),
  );
  return router;
};
