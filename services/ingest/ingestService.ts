import { hostStreamName, parseEvent, type FieldIssue, type IommuEvent, type ValidationError } from '../../schemas/index.js';
import type { EventStore } from '../eventStore/eventStore.js';
import type { SequenceTracker } from './sequenceTracker.js';

export type IngestStatus = 'accepted' | 'duplicate' | 'rejected';

export interface IngestItemResult {
  readonly index: number;
  readonly status: IngestStatus;
  readonly id?: string;
  readonly host?: string;
  readonly seq?: number;
  readonly errors?: readonly FieldIssue[];
  /** accepted, but worth a look: a sequence gap opened or an event arrived late */
  readonly warnings?: readonly string[];
}

export interface IngestSummary {
  readonly accepted: number;
  readonly duplicate: number;
  readonly rejected: number;
  readonly results: readonly IngestItemResult[];
}

export interface IngestHooks {
  onAccepted?(host: string, count: number): void;
  onDuplicate?(count: number): void;
  onRejected?(count: number): void;
  onGap?(host: string): void;
  onOutOfOrder?(host: string): void;
}

/**
 * Ingest semantics (the same for HTTP, files and Kafka): every element is judged on its own. Invalid
 * events never reach the store and are answered with their field errors; valid neighbours are stored
 * (partial acceptance). A stored id is a duplicate, not an error, so client retries are safe. The answer
 * is given only after the store made the accepted events durable.
 */
export const createIngestService = (deps: { store: EventStore; sequences: SequenceTracker; hooks?: IngestHooks }) => {
  const { store, sequences, hooks = {} } = deps;

  // one read per host, shared by concurrent requests; a failed read is retried by the next request
  const seeding = new Map<string, Promise<void>>();
  const seedHost = (host: string): Promise<void> => {
    let p = seeding.get(host);
    if (!p) {
      p = (async () => {
        for await (const last of store.readStream(hostStreamName(host), { direction: 'backwards', maxCount: 1 })) sequences.seed(host, last.event.seq);
      })();
      seeding.set(host, p);
      p.catch(() => seeding.delete(host));
    }
    return p;
  };

  /** `preRejected`: elements that failed before schema validation (e.g. a malformed NDJSON line) */
  const ingest = async (inputs: readonly unknown[], base = 'events', preRejected: ReadonlyMap<number, ValidationError> = new Map()): Promise<IngestSummary> => {
    const results: IngestItemResult[] = new Array(inputs.length);
    const byHost = new Map<string, { index: number; event: IommuEvent }[]>();
    let rejected = 0;
    inputs.forEach((input, index) => {
      const early = preRejected.get(index);
      const r = early ? { ok: false as const, error: early } : parseEvent(input, `${base}[${index}]`);
      if (!r.ok) {
        rejected += 1;
        results[index] = { index, status: 'rejected', errors: r.error.issues.length > 0 ? r.error.issues : [{ path: `${base}[${index}]`, message: r.error.message }] };
        return;
      }
      const list = byHost.get(r.value.host) ?? [];
      list.push({ index, event: r.value });
      byHost.set(r.value.host, list);
    });
    if (rejected > 0) hooks.onRejected?.(rejected);

    let accepted = 0;
    let duplicate = 0;
    const hostBatches = [...byHost];
    await Promise.all(hostBatches.map(([host]) => seedHost(host)));
    // all hosts' appends are issued together: the store commits them in one transaction (one fsync),
    // not one per host
    const appendedAll = await Promise.all(
      hostBatches.map(([host, items]) => {
        // a batch is one delivery: order it by the host's own sequence before it becomes stream order
        items.sort((a, b) => a.event.seq - b.event.seq);
        return store.appendToStream(
          hostStreamName(host),
          items.map((i) => i.event),
          { expectedRevision: 'any' },
        );
      }),
    );
    hostBatches.forEach(([host, items], h) => {
      const appended = appendedAll[h]!;
      let hostAccepted = 0;
      items.forEach((item, k) => {
        const status = appended.outcomes[k] === 'duplicate' ? 'duplicate' : 'accepted';
        const warnings: string[] = [];
        if (status === 'accepted') {
          hostAccepted += 1;
          const seen = sequences.observe(host, item.event.seq);
          if (seen.kind === 'gap') {
            warnings.push(`sequence gap on ${host}: seq ${seen.missingFrom}..${seen.missingTo} missing before ${item.event.seq}`);
            hooks.onGap?.(host);
          } else if (seen.kind === 'late') {
            warnings.push(`out of order on ${host}: seq ${item.event.seq} arrived after a later one${seen.filledGap ? ' (fills a gap)' : ''}`);
            hooks.onOutOfOrder?.(host);
          } else if (seen.kind === 'repeat') {
            warnings.push(`seq ${item.event.seq} repeated on ${host} with a different event id`);
            hooks.onOutOfOrder?.(host);
          }
        }
        results[item.index] = {
          index: item.index,
          status,
          id: item.event.id,
          host,
          seq: item.event.seq,
          ...(warnings.length > 0 ? { warnings } : {}),
        };
      });
      accepted += hostAccepted;
      duplicate += items.length - hostAccepted;
      if (hostAccepted > 0) hooks.onAccepted?.(host, hostAccepted);
    });
    if (duplicate > 0) hooks.onDuplicate?.(duplicate);
    return { accepted, duplicate, rejected, results };
  };

  return { ingest };
};
export type IngestService = ReturnType<typeof createIngestService>;
