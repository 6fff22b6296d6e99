import { hostStreamName, isAppError, parseEvent, type FieldIssue, type IommuEvent, type ValidationError } from '../../../schemas/index.js';
import type { AppendConflict, AppendOptions, AppendOutcome, EventStore } from '../eventStore/eventStore.js';
import { describeIdConflict } from '../eventStore/idConflicts.js';

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
  /** `store`: a valid event the store refused (not retriable, e.g. over its size limit); absent: invalid */
  readonly rejectedBy?: 'store';
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
}

/** what the fold tells the ingest answer about the events it appended (`LiveProjection.watchSequence` provides it) */
export interface SequenceWatch {
  add(eventId: string): void;
  /** once the fold reached store position `upTo` (the request's last append) */
  notes(upTo: bigint): Promise<ReadonlyMap<string, readonly string[]>>;
  cancel(): void;
}

/**
 * Where an ingest answer's sequence warnings come from: the projection's fold of the store's events (the one
 * place sequence facts are derived; `LiveProjection.watchSequence`). Without it (the CLI writing a local
 * store) answers carry no warnings; the service's `/v1/hosts/{host}/sequence` has the facts.
 */
export interface SequenceFacts {
  watchSequence(): SequenceWatch;
}

/**
 * The one ingest pipeline (HTTP, CLI, Kafka, the demo loader): validate → order → append → sequence facts.
 * The semantics are the README's "Ingest semantics": every element is judged on its own. Invalid events never
 * reach the store and are answered with their field errors; valid neighbours are stored (partial acceptance).
 * A delivery's events are stored per host in the order of their seq. A stored id with the same content is a
 * duplicate, not an error, so retries are safe; with other content it is a conflict naming the stored event.
 * A valid event the store refuses for good is rejected on its own (`rejectedBy: 'store'`), its neighbours
 * stored; a failure that may pass (store unavailable) fails the delivery once every append of it settled. The
 * answer is given only after the store made the accepted events durable; its warnings are what the
 * projection's fold found about each event's seq.
 */
export interface IngestServiceOptions {
  /**
   * a request that arrives alone is validated and handed to the store in slices of this many events, so the
   * writer commits one slice while the next is validated; concurrent requests keep the writer busy anyway and
   * go whole (fewer, larger commits) @defaultValue 500
   */
  readonly sliceSize?: number;
}

/**
 * The inputs' indexes in stream order: by host, then by seq, as sent (validation judges them later), then by
 * index. Host and seq read into two lists, not an object per input: the lists go when this returns, before the
 * request's appends are awaited (an object per input lived, and was copied by the collector, until the answer).
 */
const streamOrder = (inputs: readonly unknown[]): number[] => {
  const hosts = new Array<string>(inputs.length);
  const seqs = new Array<number>(inputs.length);
  for (let i = 0; i < inputs.length; i++) {
    const o = inputs[i];
    const host = typeof o === 'object' && o !== null ? (o as { host?: unknown }).host : undefined;
    const seq = typeof o === 'object' && o !== null ? (o as { seq?: unknown }).seq : undefined;
    hosts[i] = typeof host === 'string' ? host : '';
    seqs[i] = typeof seq === 'number' ? seq : 0;
  }
  const order = inputs.map((_, i) => i);
  order.sort((a, b) => {
    const ha = hosts[a]!;
    const hb = hosts[b]!;
    return ha < hb ? -1 : ha > hb ? 1 : seqs[a]! - seqs[b]! || a - b;
  });
  return order;
};

/** how the answer names element `index` (a field path prefix): `events[3]` for HTTP, `topic[0]@1042` for Kafka */
export type IngestPathOf = (index: number) => string;

/** a host's append as the store answered it; `refused`: the events a store refused for good (tried one by one) */
type Appended = { readonly outcomes: readonly AppendOutcome[]; readonly conflicts: readonly AppendConflict[]; readonly lastPosition: bigint; readonly refused?: ReadonlyMap<number, string> };

/** what almost every host's append has: nothing refused, no conflict (one shared empty map, not two per host append) */
const NONE: ReadonlyMap<number, never> = new Map<number, never>();

/** every host's append takes the stream as it stands (one options object for all, not one per host append) */
const ANY_REVISION: AppendOptions = Object.freeze({ expectedRevision: 'any' });

/**
 * One slice of a request: its hosts in stream order, each with its events, and the input index of each event
 * (flat, host after host). Issue 23: over many hosts a slice holds about one event per host, and what is made
 * per host lives until the store answers (it is promoted, then collected by a full collection of a heap that
 * holds every host's state): lists side by side, not a tuple, a list of wrappers and a copy per host.
 */
interface Slice {
  readonly hosts: string[];
  readonly events: IommuEvent[][];
  readonly indexes: number[];
}

export const createIngestService = (deps: { store: EventStore; facts?: SequenceFacts; hooks?: IngestHooks; options?: IngestServiceOptions }) => {
  const { store, hooks = {} } = deps;
  const sliceSize = Math.max(1, deps.options?.sliceSize ?? 500);
  let inFlight = 0;

  /** a store's refusal that retrying cannot fix, as the answer says it; anything else is thrown on */
  const refusalOf = (e: unknown): string => {
    if (!isAppError(e) || e.retriable) throw e;
    return `${e.kind}: ${e.message}`;
  };

  /**
   * A host's slice whose append the store refused (`error`) for a reason retrying cannot fix: each event is
   * tried alone, so only the guilty ones are refused. A retriable failure fails the delivery (thrown).
   */
  const appendEventByEvent = async (stream: string, events: readonly IommuEvent[], error: unknown): Promise<Appended> => {
    const refusal = refusalOf(error);
    if (events.length === 1) return { outcomes: ['conflict'], conflicts: [], lastPosition: 0n, refused: new Map([[0, refusal]]) };
    const outcomes: AppendOutcome[] = [];
    const conflicts: AppendConflict[] = [];
    const refused = new Map<number, string>();
    let lastPosition = 0n;
    for (const [k, event] of events.entries()) {
      try {
        const r = await store.appendToStream(stream, [event], { expectedRevision: 'any' });
        if (r.lastPosition > lastPosition) lastPosition = r.lastPosition;
        outcomes.push(r.outcomes[0]!);
        for (const c of r.conflicts) conflicts.push({ ...c, index: k });
      } catch (e) {
        refused.set(k, refusalOf(e));
        outcomes.push('conflict');
      }
    }
    return { outcomes, conflicts, lastPosition, refused };
  };

  /**
   * A slice's hosts, each host's events in one durable append, all handed to the store in one multi-stream
   * append (SQLite: one transaction, one head update, however many hosts). One promise for the slice, a result
   * per host in order (issue 23: a promise, a closure and a map per host of every slice was work repeated per
   * host). A host the store refused is tried event by event; a failure is thrown once every host's settled.
   */
  const appendHosts = async ({ hosts, events }: Slice): Promise<Appended[]> => {
    // not read after the store took them (the store keeps what it needs): they die young
    const appends = new Array<{ streamName: string; events: readonly IommuEvent[]; options: AppendOptions }>(hosts.length);
    for (let k = 0; k < hosts.length; k++) appends[k] = { streamName: hostStreamName(hosts[k]!), events: events[k]!, options: ANY_REVISION };
    const results = await store.appendToStreams(appends);
    // the store's own results, not a copy of each with a field added
    if (results.every((r) => r.ok)) return results.map((r) => (r as Extract<typeof r, { ok: true }>).result);
    const each = await Promise.allSettled(results.map((r, k) => (r.ok ? r.result : appendEventByEvent(hostStreamName(hosts[k]!), events[k]!, r.error))));
    const failed = each.find((e) => e.status === 'rejected');
    if (failed) throw failed.reason;
    return each.map((e) => (e as PromiseFulfilledResult<Appended>).value);
  };

  /**
   * `base`: how the answer names the elements (`events` → `events[3]`); `preRejected`: elements that failed
   * before schema validation (a malformed NDJSON line, a Kafka message that is not JSON)
   */
  const ingest = async (inputs: readonly unknown[], base: string | IngestPathOf = 'events', preRejected: ReadonlyMap<number, ValidationError> = new Map()): Promise<IngestSummary> => {
    const step = inFlight === 0 ? sliceSize : Math.max(1, inputs.length);
    const pathOf: IngestPathOf = typeof base === 'string' ? (i) => `${base}[${i}]` : base;
    inFlight++;
    const watch = deps.facts?.watchSequence();
    try {
      return await ingestInSlices(inputs, pathOf, preRejected, step, watch);
    } finally {
      watch?.cancel();
      inFlight--;
    }
  };

  const ingestInSlices = async (inputs: readonly unknown[], pathOf: IngestPathOf, preRejected: ReadonlyMap<number, ValidationError>, step: number, watch: SequenceWatch | undefined): Promise<IngestSummary> => {
    const results: IngestItemResult[] = new Array(inputs.length);
    // a batch is one delivery: each host's events become stream order by the host's own sequence. The order is
    // fixed from the fields as sent, so slices can be validated and stored one after the other in that order.
    const order = streamOrder(inputs);

    const appends: { slice: Slice; appended: Promise<Appended[]> }[] = [];
    let rejected = 0;
    for (let from = 0; from < order.length; from += step) {
      const slice: Slice = { hosts: [], events: [], indexes: [] };
      // the order puts a host's valid events next to each other (a parsed host is the host as sent)
      let last: IommuEvent[] | undefined;
      let lastHost = '';
      for (let o = from; o < order.length && o < from + step; o++) {
        const index = order[o]!;
        const early = preRejected.get(index);
        const r = early ? { ok: false as const, error: early } : parseEvent(inputs[index], pathOf(index));
        if (!r.ok) {
          rejected += 1;
          results[index] = { index, status: 'rejected', errors: r.error.issues.length > 0 ? r.error.issues : [{ path: pathOf(index), message: r.error.message }] };
          continue;
        }
        watch?.add(r.value.id);
        if (last !== undefined && r.value.host === lastHost) last.push(r.value);
        else {
          slice.hosts.push((lastHost = r.value.host));
          slice.events.push((last = [r.value]));
        }
        slice.indexes.push(index);
      }
      // appends are issued, not awaited: the store keeps a stream's appends in call order and commits what is
      // queued together (one fsync) while the next slice is validated
      const appended = appendHosts(slice);
      // judged below, once all settled; until then a failure must not count as unhandled (that ends the process)
      appended.catch(() => undefined);
      appends.push({ slice, appended });
      // the store hands its queue to the writer on the next turn of the event loop (it gathers a turn's appends
      // into one commit): yield that turn, or the writer would wait for the whole request
      if (from + step < order.length) await new Promise<void>((resolve) => setImmediate(resolve));
    }

    // every append settles before an error is thrown: nothing of this request is still in flight when it fails
    const settled = await Promise.allSettled(appends.map((a) => a.appended));
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) {
      if (rejected > 0) hooks.onRejected?.(rejected);
      throw failed.reason;
    }
    let upTo = 0n;
    for (const s of settled) if (s.status === 'fulfilled') for (const v of s.value) if (v.lastPosition > upTo) upTo = v.lastPosition;
    const notes = watch ? await watch.notes(upTo) : undefined;

    let accepted = 0;
    let duplicate = 0;
    let conflict = 0;
    const acceptedByHost = new Map<string, number>();
    for (let a = 0; a < appends.length; a++) {
      const { hosts, events, indexes } = appends[a]!.slice;
      const answers = (settled[a] as PromiseFulfilledResult<Appended[]>).value;
      let at = 0;
      for (let h = 0; h < hosts.length; h++) {
        const host = hosts[h]!;
        const items = events[h]!;
        const { outcomes, conflicts } = answers[h]!;
        const refused = answers[h]!.refused ?? NONE;
        const storedFor = conflicts.length === 0 ? NONE : new Map(conflicts.map((c) => [c.index, c.stored]));
        let hostAccepted = 0;
        for (let k = 0; k < items.length; k++, at++) {
          const event = items[k]!;
          const index = indexes[at]!;
          const outcome = outcomes[k]!;
          const status = outcome === 'appended' ? 'accepted' : outcome;
          const stored = storedFor.get(k);
          const common: IngestItemResult = { index, status, id: event.id, host, seq: event.seq };
          const refusal = refused.get(k);
          if (refusal !== undefined) {
            rejected += 1;
            results[index] = { ...common, status: 'rejected', rejectedBy: 'store', errors: [{ path: pathOf(index), message: refusal }] };
            continue;
          }
          if (status === 'conflict' && stored) {
            conflict += 1;
            results[index] = {
              ...common,
              errors: [{ path: `${pathOf(index)}.id`, message: describeIdConflict(stored) }],
              conflict: { id: stored.id, host: stored.host, seq: stored.seq, stream: stored.streamName, revision: stored.revision.toString(), position: stored.position.toString() },
            };
            continue;
          }
          const warnings = status === 'accepted' ? notes?.get(event.id) : undefined;
          if (status === 'accepted') hostAccepted += 1;
          // most answers carry no warning: the common record itself, not a copy
          results[index] = warnings !== undefined ? { ...common, warnings } : common;
        }
        accepted += hostAccepted;
        duplicate += items.length - hostAccepted - storedFor.size - refused.size;
        if (hostAccepted > 0) acceptedByHost.set(host, (acceptedByHost.get(host) ?? 0) + hostAccepted);
      }
    }
    if (rejected > 0) hooks.onRejected?.(rejected);
    for (const [host, n] of acceptedByHost) hooks.onAccepted?.(host, n);
    if (duplicate > 0) hooks.onDuplicate?.(duplicate);
    if (conflict > 0) hooks.onConflict?.(conflict);
    return { accepted, duplicate, conflict, rejected, results };
  };

  return { ingest };
};
export type IngestService = ReturnType<typeof createIngestService>;
