import { ExpectedVersionConflictError, IllegalStateError, ValidationError, type IommuEvent, type RecordedEvent } from '../../../../schemas/index.js';
import type {
  AppendConflict,
  AppendOptions,
  AppendOutcome,
  AppendResult,
  EventStore,
  ReadAllOptions,
  ReadByIndexOptions,
  ReadStreamOptions,
  SubscribeOptions,
  Subscription,
} from '../eventStore.js';
import { appendEach } from '../eventStore.js';
import { sameEventContent, toStoredEventRef } from '../idConflicts.js';
import { deviceKey, fileUnderKeys, groupKey } from '../indexKeys.js';
import { assertAppendable } from '../streamRules.js';
import { runSubscription } from '../subscriptionLoop.js';

/** the data behind an in-memory store: share it between instances to simulate a restart */
export interface InMemoryEventStoreData {
  readonly all: RecordedEvent[];
  readonly streams: Map<string, RecordedEvent[]>;
  readonly ids: Map<string, bigint>;
  /** `<host>\0<key>` → global positions (ascending) */
  readonly index: Map<string, bigint[]>;
  readonly members: Map<string, Map<string, number>>;
  readonly checkpoints: Map<string, bigint>;
}

export const createInMemoryEventStoreData = (): InMemoryEventStoreData => ({
  all: [],
  streams: new Map(),
  ids: new Map(),
  index: new Map(),
  members: new Map(),
  checkpoints: new Map(),
});

const iterate = async function* (items: readonly RecordedEvent[]): AsyncGenerator<RecordedEvent> {
  for (const item of items) yield item;
};

/**
 * The event store in memory, for unit tests of code that uses the port (no I/O, no tamper evidence).
 * Passes the same contract suite as the SQLite and EventStoreDB adapters. Positions are 1-based and dense.
 */
export const getInMemoryEventStore = (data: InMemoryEventStoreData = createInMemoryEventStoreData()): EventStore => {
  let closed = false;
  const wakers = new Set<() => void>();
  const assertOpen = (): void => {
    if (closed) throw new IllegalStateError('event store is closed');
  };

  const appendToStream = async (streamName: string, events: readonly IommuEvent[], opts: AppendOptions = {}): Promise<AppendResult> => {
    assertOpen();
    assertAppendable(streamName, events);
    const stream = data.streams.get(streamName) ?? [];
    const before = BigInt(stream.length) - 1n;
    const expected = opts.expectedRevision ?? 'any';
    // id → the event holding it: stored, or earlier in this append (where it will be stored)
    const seen = new Map<string, RecordedEvent>();
    const outcomes: AppendOutcome[] = [];
    const conflicts: AppendConflict[] = [];
    const fresh: IommuEvent[] = [];
    events.forEach((e, index) => {
      const position = data.ids.get(e.id);
      const holder = position !== undefined ? data.all[Number(position) - 1]! : seen.get(e.id);
      if (!holder) {
        seen.set(e.id, { event: e, streamName, streamPosition: BigInt(stream.length + fresh.length), globalPosition: BigInt(data.all.length + fresh.length + 1) });
        outcomes.push('appended');
        fresh.push(e);
      } else if (sameEventContent(holder.event, e)) outcomes.push('duplicate');
      else {
        outcomes.push('conflict');
        conflicts.push({ index, stored: toStoredEventRef(holder) });
      }
    });
    if (fresh.length === 0) {
      const last = events.at(-1);
      return { nextExpectedRevision: before, lastPosition: last ? (data.ids.get(last.id) ?? 0n) : 0n, outcomes, conflicts };
    }
    const conflict = expected === 'any' ? false : expected === 'no_stream' ? stream.length > 0 : before !== expected;
    if (conflict) throw new ExpectedVersionConflictError(streamName, String(expected), before < 0n ? 'no_stream' : before.toString());
    for (const event of fresh) {
      const recorded: RecordedEvent = { event, streamName, streamPosition: BigInt(stream.length), globalPosition: BigInt(data.all.length + 1) };
      stream.push(recorded);
      data.all.push(recorded);
      data.ids.set(event.id, recorded.globalPosition);
      const m = data.members.get(event.host) ?? new Map<string, number>();
      data.members.set(event.host, m);
      for (const key of fileUnderKeys(event, m)) {
        const k = `${event.host}\u0000${key}`;
        data.index.set(k, [...(data.index.get(k) ?? []), recorded.globalPosition]);
      }
    }
    data.streams.set(streamName, stream);
    for (const wake of wakers) wake();
    return { nextExpectedRevision: BigInt(stream.length) - 1n, lastPosition: BigInt(data.all.length), outcomes, conflicts };
  };

  const readStream = (streamName: string, opts: ReadStreamOptions = {}): AsyncIterable<RecordedEvent> => {
    assertOpen();
    const stream = data.streams.get(streamName) ?? [];
    const backwards = opts.direction === 'backwards';
    const from = opts.fromRevision ?? (backwards ? 'end' : 'start');
    let items = backwards
      ? stream.filter((r) => from === 'end' || (from !== 'start' && r.streamPosition <= from)).reverse()
      : stream.filter((r) => from === 'start' || (from !== 'end' && r.streamPosition >= from));
    const until = opts.toPosition;
    if (until !== undefined) items = items.filter((r) => r.globalPosition <= until);
    if (opts.maxCount !== undefined) items = items.slice(0, opts.maxCount);
    return iterate(items);
  };

  const readAll = (opts: ReadAllOptions = {}): AsyncIterable<RecordedEvent> => {
    assertOpen();
    const items = data.all.slice(Number(opts.after ?? 0n));
    return iterate(opts.maxCount !== undefined ? items.slice(0, opts.maxCount) : items);
  };

  const readByIndex = (opts: ReadByIndexOptions): AsyncIterable<RecordedEvent> => {
    assertOpen();
    const at = (key: string): Set<bigint> => new Set(data.index.get(`${opts.host}\u0000${key}`) ?? []);
    const byDevice = opts.device !== undefined ? at(deviceKey(opts.device)) : undefined;
    const byGroup = opts.group !== undefined ? at(groupKey(opts.group)) : undefined;
    const after = opts.after ?? 0n;
    let items = data.all.filter((r) => {
      if (r.globalPosition <= after) return false;
      if (byDevice || byGroup) {
        if (byDevice && !byDevice.has(r.globalPosition)) return false;
        if (byGroup && !byGroup.has(r.globalPosition)) return false;
      } else if (r.streamName !== `host-${opts.host}`) return false;
      const t = BigInt(r.event.time);
      return (opts.fromTimeNs === undefined || t >= opts.fromTimeNs) && (opts.toTimeNs === undefined || t <= opts.toTimeNs);
    });
    if (opts.maxCount !== undefined) items = items.slice(0, opts.maxCount);
    return iterate(items);
  };

  const subscribe = async (opts: SubscribeOptions): Promise<Subscription> => {
    assertOpen();
    if (!opts.subscriberName) throw new ValidationError('subscriberName: must not be empty', [{ path: 'subscriberName', message: 'must not be empty' }]);
    const from = data.checkpoints.get(opts.subscriberName) ?? opts.fromPosition ?? 0n;
    return runSubscription(opts, from, {
      readAfter: (position, max) => data.all.slice(Number(position), Number(position) + max),
      saveCheckpoint: (name, position) => void data.checkpoints.set(name, position),
      isClosed: () => closed,
      wakers,
    });
  };

  return {
    appendToStream,
    // in memory an append is applied at once: one after another is already all together
    appendToStreams: appendEach(appendToStream),
    readStream,
    readAll,
    readByIndex,
    subscribe,
    headPosition: () => Promise.resolve(BigInt(data.all.length)),
    close: async () => {
      closed = true;
      for (const wake of wakers) wake();
    },
  };
};
