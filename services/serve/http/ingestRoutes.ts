import express, { Router } from 'express';
import { ValidationError } from '../../../schemas/index.js';
import type { IngestService, IngestSummary } from '../../shared/ingest/ingestService.js';
import { handle, sendProblem } from './problem.js';

const NDJSON_TYPES = ['application/x-ndjson', 'application/jsonl', 'application/json-seq', 'application/x-jsonlines'];

export interface IngestRouteOptions {
  readonly ingest: IngestService;
  readonly bodyLimitBytes: number;
  readonly maxBatch: number;
}

/**
 * Splits a body into event candidates. JSON: one event (object) or a batch (array). NDJSON: one event per
 * line; a line that is not JSON is rejected on its own, its neighbours still count.
 */
export const splitBody = (text: string, contentType: string): { items: unknown[]; lineErrors: Map<number, ValidationError> } => {
  const lineErrors = new Map<number, ValidationError>();
  if (NDJSON_TYPES.some((t) => contentType.startsWith(t))) {
    const items: unknown[] = [];
    for (const line of text.split('\n')) {
      const trimmed = line.trim();
      if (trimmed === '') continue;
      try {
        items.push(JSON.parse(trimmed));
      } catch (e) {
        lineErrors.set(items.length, new ValidationError(`events[${items.length}]: not valid JSON: ${(e as Error).message}`, [{ path: `events[${items.length}]`, message: `not valid JSON: ${(e as Error).message}` }]));
        items.push(undefined);
      }
    }
    return { items, lineErrors };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ValidationError(`body: not valid JSON: ${(e as Error).message}`, [{ path: 'body', message: `not valid JSON: ${(e as Error).message}` }]);
  }
  return { items: Array.isArray(value) ? value : [value], lineErrors };
};

/**
 * The answer's status: 200 when every event was accepted or a duplicate; 207 when some failed (rejected, or a
 * conflict: the id is stored with other content) and others are stored, or failures of both kinds; 400 when
 * all were rejected; 409 when all were conflicts (a lone conflicting event is a 409).
 */
export const ingestStatusOf = (summary: Pick<IngestSummary, 'accepted' | 'duplicate' | 'conflict' | 'rejected'>): number => {
  if (summary.rejected === 0 && summary.conflict === 0) return 200;
  if (summary.accepted + summary.duplicate > 0) return 207;
  if (summary.conflict === 0) return 400;
  return summary.rejected === 0 ? 409 : 207;
};

/** `POST /v1/events`, answered as {@link ingestStatusOf} says; the body always lists each event's fate */
export const createIngestRouter = (options: IngestRouteOptions): Router => {
  const router = Router();
  router.post(
    '/v1/events',
    express.text({ type: () => true, limit: options.bodyLimitBytes }),
    handle(async (req, res) => {
      const text = typeof req.body === 'string' ? req.body : '';
      if (text.trim() === '') throw new ValidationError('body: empty; send one event, a JSON array, or NDJSON', [{ path: 'body', message: 'empty' }]);
      const { items, lineErrors } = splitBody(text, req.headers['content-type'] ?? 'application/json');
      if (items.length === 0) throw new ValidationError('body: an empty batch; send at least one event', [{ path: 'body', message: 'empty batch' }]);
      if (items.length > options.maxBatch) {
        return sendProblem(res, 413, 'batch too large', `${items.length} events in one request; the limit is ${options.maxBatch}`);
      }
      const summary = await options.ingest.ingest(items, 'events', lineErrors);
      const status = ingestStatusOf(summary);
      // end(), not json(): express would hash the whole answer (about 100 bytes per event) for an ETag that
      // no one revalidates on a POST
      res.status(status).type('application/json').end(JSON.stringify(summary));
    }),
  );
  return router;
};
