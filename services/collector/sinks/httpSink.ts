import { UnavailableError, type IommuEvent } from '../../../schemas/index.js';
import { BatchTooLargeError, type DeliveryResult, type DeliveryStatus, type EventSink } from './eventSink.js';

export interface HttpSinkOptions {
  /** the service base URL, e.g. https://iommutrail.example:8443 */
  readonly url: string;
  /** bearer token with the ingest role */
  readonly token?: string;
  /** @defaultValue 30_000 */
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
}

interface IngestAnswer {
  // 'conflict': the id is stored with other content (the service answers 409 when every event is one)
  results?: { index: number; status: DeliveryStatus | 'conflict'; id?: string; errors?: { path: string; message: string }[] }[];
}

/**
 * POSTs NDJSON batches to `<url>/v1/events`. A 2xx (or a 400 that lists per-event results) is a delivery:
 * each event's status comes from the answer. 413 → {@link BatchTooLargeError}; anything else (5xx, 401,
 * 429, network, timeout, an answer without results) → {@link UnavailableError}, retried by the shipper.
 */
export const createHttpSink = (options: HttpSinkOptions): EventSink => {
  const base = new URL(options.url);
  const endpoint = new URL('v1/events', base.href.endsWith('/') ? base : new URL(`${base.href}/`));
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 30_000;
  return {
    name: `http ${endpoint.origin}`,
    async send(events: readonly IommuEvent[]): Promise<DeliveryResult[]> {
      let response: Response;
      try {
        response = await doFetch(endpoint, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-ndjson',
            accept: 'application/json',
            ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          },
          body: events.map((e) => JSON.stringify(e)).join('\n') + '\n',
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        throw new UnavailableError(`POST ${endpoint.href}: ${(error as Error).message}`, { cause: error });
      }
      if (response.status === 413) throw new BatchTooLargeError(`POST ${endpoint.href}: 413 for ${events.length} event(s)`);
      let answer: IngestAnswer | undefined;
      try {
        answer = (await response.json()) as IngestAnswer;
      } catch {
        answer = undefined;
      }
      const results = answer?.results;
      const perEvent = (response.ok || response.status === 207 || response.status === 400 || response.status === 409) && Array.isArray(results) && results.length === events.length;
      if (!perEvent) {
        throw new UnavailableError(`POST ${endpoint.href}: HTTP ${response.status}${results ? ` with ${results.length} result(s) for ${events.length} event(s)` : ''}`);
      }
      return results.map((r, i) => {
        const id = events[r.index ?? i]?.id ?? events[i]!.id;
        return r.status === 'rejected' || r.status === 'conflict'
          ? { id, status: 'rejected' as const, reason: (r.errors ?? []).map((e) => `${e.path}: ${e.message}`).join('; ') || r.status }
          : { id, status: r.status };
      });
    },
    close: async () => undefined,
  };
};
