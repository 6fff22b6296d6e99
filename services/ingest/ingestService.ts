import { hostStreamName, parseEvent, type FieldIssue, type IommuEvent, type ValidationError } from '../../schemas/index.js';
import type { AppendResult, EventStore } from '../eventStore/eventStore.js';
import { describeIdConflict } from '../eventStore/idConflicts.js';
import type { SequenceTracker } from './sequenceTracker.js';

/**
 * `duplicate`: the id is stored with the same content (a retry, nothing to do); `conflict`: the id is stored
 * with other content, nothing of this event was stored (`conflict` names the stored event)
 */
export type IngestStatus = 'accepted' | 'duplicate' | 'conflict' | 'rejected';

/** the stored event holding a conflicting id; positions as decimal strings (64-bit) */
export interface IngestConflict {
  readonly id: string;
  readonly host: string;
  readonly seq: number;
  readonly stream: string;
  readonly revision: string;
  readonly position: string;
}

export interface IngestItemResult {
  readonly index: number;
  readonly status: IngestStatus;
  readonly id?: string;
  readonly host?: string;
  readonly seq?: number;
  readonly errors?: readonly FieldIssue[];
  readonly conflict?: IngestConflict;
  /** accepted, but worth a look: a sequence gap opened or an event arrived late */
  readonly warnings?: readonly string[];
}

export interface IngestSummary {
  readonly accepted: number;
  readonly duplicate: number;
  readonly conflict: number;
  readonly rejected: number;
  readonly results: readonly IngestItemResult[];
}

export interface IngestHooks {
  onAccepted?(host: string, count: number): void;
  onDuplicate?(count: number): void;
  onConflict?(count: number): void;
  onRejected?(count: number): void;
  onGap?(host: string): void;
  onOutOfOrder?(host: string): void;
}

/**
 * Ingest semantics (the same for HTTP, files and Kafka): every element is judged on its own. Invalid
 * events never reach the store and are answered with their field errors; valid neighbours are stored
 * (partial acceptance). A stored id with the same content is a duplicate, not an error, so client retries are
 * safe; with other content it is a conflict naming the stored event. The answer is given only after the store
 * made the accepted events durable.
 */
export interface IngestServiceOptions {
  /**
   * a request that arrives alone is validated and handed to the store in slices of this many events, so the
   * writer commits one slice while the next is validated; concurrent requests keep the writer busy anyway and
   * go whole (fewer, larger commits) @defaultValue 500
   */
  readonly sliceSize?: number;
}

/** host and seq as sent, before validation: only to put a batch in stream order (validation judges them later) */
const orderKeyOf = (input: unknown): { host: string; seq: number } => {
  const o = (typeof input === 'object' && input !== null ? input : {}) as { host?: unknown; seq?: unknown };
  return { host: typeof o.host === 'string' ? o.host : '', seq: typeof o.seq === 'number' ? o.seq : 0 };
};

export const createIngestService = (deps: { store: EventStore; sequences: SequenceTracker; hooks?: IngestHooks; options?: IngestServiceOptions }) => {
  const { store, sequences, hooks = {} } = deps;
  const sliceSize = Math.max(1, deps.options?.sliceSize ?? 500);
  let inFlight = 0;

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
    const step = inFlight === 0 ? sliceSize : Math.max(1, inputs.length);
    inFlight++;
    try {
      return await ingestInSlices(inputs, base, preRejected, step);
    } finally {
      inFlight--;
    }
  };

  const ingestInSlices = async (inputs: readonly unknown[], base: string, preRejected: ReadonlyMap<number, ValidationError>, step: number): Promise<IngestSummary> => {
    const results: IngestItemResult[] = new Array(inputs.length);
    // a batch is one delivery: each host's events become stream order by the host's own sequence. The order is
    // fixed from the fields as sent, so slices can be validated and stored one after the other in that order.
    const keys = inputs.map(orderKeyOf);
    const order = inputs.map((_, i) => i);
    order.sort((a, b) => {
      const ka = keys[a]!;
      const kb = keys[b]!;
      return ka.host < kb.host ? -1 : ka.host > kb.host ? 1 : ka.seq - kb.seq || a - b;
    });

    const appends: { host: string; items: { index: number; event: IommuEvent }[]; appended: Promise<AppendResult> }[] = [];
    let rejected = 0;
    let failure: { reason: unknown } | undefined;
    for (let from = 0; from < order.length; from += step) {
      const slice = new Map<string, { index: number; event: IommuEvent }[]>();
      for (const index of order.slice(from, from + step)) {
        const early = preRejected.get(index);
        const r = early ? { ok: false as const, error: early } : parseEvent(inputs[index], `${base}[${index}]`);
        if (!r.ok) {
          rejected += 1;
          results[index] = { index, status: 'rejected', errors: r.error.issues.length > 0 ? r.error.issues : [{ path: `${base}[${index}]`, message: r.error.message }] };
          continue;
        }
        const list = slice.get(r.value.host);
        if (list) list.push({ index, event: r.value });
        else slice.set(r.value.host, [{ index, event: r.value }]);
      }
      // a host's last stored seq is read before its first append: gaps are judged against what came before
      const seeded = await Promise.allSettled([...slice.keys()].map(seedHost));
      const seedFailed = seeded.find((s) => s.status === 'rejected');
      if (seedFailed) {
        failure = { reason: seedFailed.reason };
        break;
      }
      // appends are issued, not awaited: the store keeps a stream's appends in call order and commits what is
      // queued together (one fsync) while the next slice is validated
      for (const [host, items] of slice) {
        const appended = store.appendToStream(hostStreamName(host), items.map((i) => i.event), { expectedRevision: 'any' });
        // judged below, once all settled; until then a failure must not count as unhandled (that ends the process)
        appended.catch(() => undefined);
        appends.push({ host, items, appended });
      }
      // the store hands its queue to the writer on the next turn of the event loop (it gathers a turn's appends
      // into one commit): yield that turn, or the writer would wait for the whole request
      if (from + step < order.length) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (rejected > 0) hooks.onRejected?.(rejected);

    // every append settles before an error is thrown: nothing of this request is still in flight when it fails
    const settled = await Promise.allSettled(appends.map((a) => a.appended));
    const failed = failure ?? settled.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;

    let accepted = 0;
    let duplicate = 0;
    let conflict = 0;
    const acceptedByHost = new Map<string, number>();
    appends.forEach(({ host, items }, a) => {
      const { outcomes, conflicts } = (settled[a] as PromiseFulfilledResult<AppendResult>).value;
      const storedFor = new Map(conflicts.map((c) => [c.index, c.stored]));
      let hostAccepted = 0;
      items.forEach((item, k) => {
        const status = outcomes[k] === 'appended' ? 'accepted' : outcomes[k]!;
        const stored = storedFor.get(k);
        const common: IngestItemResult = { index: item.index, status, id: item.event.id, host, seq: item.event.seq };
        if (status === 'conflict' && stored) {
          conflict += 1;
          results[item.index] = {
            ...common,
            errors: [{ path: `${base}[${item.index}].id`, message: describeIdConflict(stored) }],
            conflict: { id: stored.id, host: stored.host, seq: stored.seq, stream: stored.streamName, revision: stored.revision.toString(), position: stored.position.toString() },
          };
          return;
        }
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
        results[item.index] = { ...common, ...(warnings.length > 0 ? { warnings } : {}) };
      });
      accepted += hostAccepted;
      duplicate += items.length - hostAccepted - storedFor.size;
      if (hostAccepted > 0) acceptedByHost.set(host, (acceptedByHost.get(host) ?? 0) + hostAccepted);
    });
    for (const [host, n] of acceptedByHost) hooks.onAccepted?.(host, n);
    if (duplicate > 0) hooks.onDuplicate?.(duplicate);
    if (conflict > 0) hooks.onConflict?.(conflict);
    return { accepted, duplicate, conflict, rejected, results };
  };

  return { ingest };
};
export type IngestService = ReturnType<typeof createIngestService>;
