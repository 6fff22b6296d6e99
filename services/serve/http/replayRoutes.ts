import { Router } from 'express';
import { z } from 'zod';
import { resolveStage } from '../../../replay/index.js';
import { NotFoundError } from '../../../schemas/index.js';
import type { EventStore } from '../../shared/eventStore/eventStore.js';
import { HostParam, TimeNsParam, parseParams } from './params.js';
import { handle } from './problem.js';
import { runReplayJob } from './replayJob.js';
import type { ReplayPool } from './replayPool.js';

/**
 * `POST /v1/hosts/:host/replay?variant=stage2[&compareWith=upstream][&from=&to=]` (a variant, or
 * `upstream@6.1`: every host judged as that kernel release): the host's recorded
 * history re-decided by a protocol model, with every divergence (root cause first). Reads only: the
 * read role is enough. With a `pool` (the SQLite store) the replay runs on a worker thread; otherwise on
 * this thread, yielding the event loop as it goes.
 */
export const createReplayRouter = (deps: { store: EventStore; pool?: ReplayPool }): Router => {
  const router = Router();
  // a variant or a release stage, by name (replay/stages/releaseStage.ts): the job carries the name to the worker
  const Variant = z.string().superRefine((name, ctx) => {
    try {
      resolveStage(name);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message.replace(/^--stage: /, '') });
    }
  });
  router.post(
    '/v1/hosts/:host/replay',
    handle(async (req, res) => {
      const host = parseParams(HostParam, req.params.host, 'path');
      const q = parseParams(
        z.strictObject({ variant: Variant, compareWith: Variant.optional(), from: TimeNsParam.optional(), to: TimeNsParam.optional() }),
        req.query,
        'query',
      );
      const job = {
        host,
        variant: q.variant,
        ...(q.compareWith ? { compareWith: q.compareWith } : {}),
        ...(q.from !== undefined ? { from: q.from } : {}),
        ...(q.to !== undefined ? { to: q.to } : {}),
      };
      const { report, seen } = deps.pool ? await deps.pool.run(job) : await runReplayJob(deps.store, job);
      if (seen === 0) throw new NotFoundError(`host ${host}: no events recorded${q.from !== undefined || q.to !== undefined ? ' in that time range' : ''}`);
      res.json(report);
    }),
  );
  return router;
};
