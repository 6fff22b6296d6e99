import type { Database } from 'better-sqlite3';
import { Router } from 'express';
import { z } from 'zod';
import { NotFoundError, ValidationError } from '../../../schemas/index.js';
import { latestCheckpoint, leafFormatOf, logOrigin, storeConsistencyProof, storeInclusionProof } from '../../shared/eventStore/sqlite/tamper/tlogStore.js';
import { parseParams } from './params.js';
import { handle } from './problem.js';

export interface ProofRouteDeps {
  /** the SQLite store's read connection; undefined for a store without a transparency log (EventStoreDB) */
  readonly db: Database | undefined;
}

const Size = z.string().regex(/^[1-9]\d{0,15}$/, { error: 'expected a tree size (decimal integer ≥ 1)' }).transform(Number);

/**
 * The transparency log, for auditors and witnesses (RFC 9162 proofs, C2SP checkpoints):
 * - `GET /v1/log/checkpoint`: the latest signed checkpoint (text/plain signed note; `?format=json` wraps it)
 * - `GET /v1/log/proofs/inclusion?position=P[&size=N]`: the audit path of the event at P in the tree of N
 *   leaves (default: the latest checkpoint's size), with the event's leaf data
 * - `GET /v1/log/proofs/consistency?first=M&second=N`: the consistency proof between two tree sizes
 * Hashes are base64, as in checkpoints.
 */
export const createProofRouter = (deps: ProofRouteDeps): Router => {
  const router = Router();
  const dbOrThrow = (): Database => {
    if (!deps.db) throw new NotFoundError('this store keeps no transparency log (SQLite stores only)');
    return deps.db;
  };
  const latest = (db: Database) => {
    const c = latestCheckpoint(db);
    if (!c) throw new NotFoundError('no signed checkpoint yet');
    return c;
  };

  router.get(
    '/v1/log/checkpoint',
    handle((req, res) => {
      const q = parseParams(z.strictObject({ format: z.enum(['note', 'json']).default('note') }), req.query, 'query');
      const db = dbOrThrow();
      const c = latest(db);
      if (q.format === 'json') res.json({ origin: logOrigin(db), size: c.size, checkpoint: c.note });
      else res.type('text/plain').send(c.note);
    }),
  );

  router.get(
    '/v1/log/proofs/inclusion',
    handle((req, res) => {
      const q = parseParams(z.strictObject({ position: Size, size: Size.optional() }), req.query, 'query');
      const db = dbOrThrow();
      const size = q.size ?? latest(db).size;
      if (q.position > size) throw new ValidationError(`position: ${q.position} is beyond the tree of ${size} leaves`, [{ path: 'position', message: `beyond the tree size ${size}` }]);
      const row = db.prepare<[number], { stream: string; revision: bigint | number; json: string }>('SELECT stream, revision, json FROM events WHERE position = ?').get(q.position);
      if (!row) throw new NotFoundError(`no event at position ${q.position}`);
      const hashes = storeInclusionProof(db, q.position, size);
      res.json({
        position: q.position,
        leafIndex: q.position - 1,
        size,
        leaf: { format: leafFormatOf(db), stream: row.stream, revision: Number(row.revision), event: row.json },
        hashes: hashes.map((h) => h.toString('base64')),
      });
    }),
  );

  router.get(
    '/v1/log/proofs/consistency',
    handle((req, res) => {
      const q = parseParams(z.strictObject({ first: Size, second: Size.optional() }), req.query, 'query');
      const db = dbOrThrow();
      const second = q.second ?? latest(db).size;
      if (q.first > second) throw new ValidationError(`first: ${q.first} is larger than second (${second})`, [{ path: 'first', message: 'larger than second' }]);
      res.json({ first: q.first, second, hashes: storeConsistencyProof(db, q.first, second).map((h) => h.toString('base64')) });
    }),
  );
  return router;
};
