import {
  ANY,
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  NO_STREAM,
  START,
  StreamNotFoundError,
  WrongExpectedVersionError,
  binaryEvent,
  jsonEvent,
  type AllStreamResolvedEvent,
  type AppendExpectedRevision,
  type ResolvedEvent,
} from '@eventstore/db-client';
import { ExpectedVersionConflictError, IllegalStateError, UnavailableError, ValidationError, type IommuEvent, type RecordedEvent } from '../../../../schemas/index.js';
import type {
  AppendConflict,
  AppendOptions,
  AppendOutcome,
  AppendResult,
  EventStore,
  ExpectedRevision,
  ReadAllOptions,
  ReadByIndexOptions,
  ReadStreamOptions,
  StoredEventRef,
  SubscribeOptions,
  Subscription,
} from '../eventStore.js';
import { appendEach } from '../eventStore.js';
import { sameEventContent, toStoredEventRef } from '../idConflicts.js';
import { applyMembershipChange, deviceKey, fileUnderKeys, groupKey, membershipChangeOf } from '../indexKeys.js';
import { assertAppendable } from '../streamRules.js';
import { checkpointStream, fromEsdbRecord, indexStream, isUserRecord, linkEventId, toEsdbEvent, type EsdbRecord } from './esdbMapping.js';

export interface EsdbEventStoreOptions {
  /**
   * how many of a stream's latest events are read before an append to report re-sent ids as duplicates;
   * older duplicates fall back on EventStoreDB's own id check @defaultValue 1000
   */
  readonly idempotencyWindow?: number;
  /** close the client on {@link EventStore.close} @defaultValue true */
  readonly ownsClient?: boolean;
}

/** our ExpectedRevision → the client's vocabulary (G7) */
const toExpectedRevision = (e: ExpectedRevision): AppendExpectedRevision => (e === 'any' ? ANY : e === 'no_stream' ? NO_STREAM : e);

/** the one place vendor errors become ours */
const convertEsdbError = (error: unknown, streamName?: string): unknown => {
  if (error instanceof WrongExpectedVersionError) {
    return new ExpectedVersionConflictError(error.streamName ?? streamName ?? '?', String(error.expectedVersion), String(error.actualVersion));
  }
  const type = (error as { type?: unknown }).type;
  if (type === 'unavailable' || type === 'deadline-exceeded' || type === 'not-leader') {
    return new UnavailableError(`EventStoreDB unavailable: ${(error as Error).message}`, { cause: error });
  }
  return error;
};

const toRecord = (resolved: ResolvedEvent | AllStreamResolvedEvent): EsdbRecord | undefined => {
  const e = resolved.event;
  if (!e) return undefined;
  return { streamId: e.streamId, id: e.id, revision: e.revision, type: e.type, data: e.data, position: 'position' in e ? e.position : undefined };
};

/** connect from a connection string such as `esdb://localhost:2113?tls=false` */
export const connectEsdbEventStore = (connectionString: string, options: EsdbEventStoreOptions = {}): EventStore =>
  getEsdbEventStore(EventStoreDBClient.connectionString(connectionString), options);

/**
 * EventStoreDB / KurrentDB adapter. Streams and expected revisions are native. Idempotency: the catalogue id
 * is the ESDB event id (ULIDs mapped to UUIDs), and ids found among the stream's latest events are filtered
 * out before appending, so they are reported `'duplicate'` whatever the expected revision. Group/device
 * indexes are link events (`$>`) in `iommutrail-idx-<host>-<key>` streams, appended after the events with
 * deterministic ids (a retry re-links idempotently). Time ranges are served by reading the host stream.
 * `$all` is ordered by commit, so `after` a checkpoint can never skip a later-committed smaller position.
 *
 * **WARNING**: not run against a live server in this repository's CI (no server package installable here);
 * the contract suite runs when EVENTSTORE_URL is set.
 */
export const getEsdbEventStore = (client: EventStoreDBClient, options: EsdbEventStoreOptions = {}): EventStore => {
  const window = options.idempotencyWindow ?? 1000;
  let closed = false;
  const assertOpen = (): void => {
    if (closed) throw new IllegalStateError('event store is closed');
  };

  async function* records(iterable: AsyncIterable<ResolvedEvent | AllStreamResolvedEvent>): AsyncGenerator<EsdbRecord> {
    try {
      for await (const resolved of iterable) {
        const r = toRecord(resolved);
        if (r) yield r;
      }
    } catch (error) {
      if (error instanceof StreamNotFoundError) return;
      throw convertEsdbError(error);
    }
  }

  // device → group per host, so device-only events are also linked under their group (as the SQLite adapter
  // does); rebuilt from the host stream on first use. **WARNING**: another process appending the same host's
  // topology changes makes this cache stale until restart.
  const membership = new Map<string, Map<string, number>>();
  const membershipOf = async (streamName: string, host: string): Promise<Map<string, number>> => {
    const cached = membership.get(host);
    if (cached) return cached;
    const m = new Map<string, number>();
    let from: bigint | undefined;
    for await (const r of readStream(streamName, { direction: 'backwards' })) {
      if (r.event.type === 'TopologySnapshotTaken') {
        from = r.streamPosition;
        break;
      }
    }
    if (from !== undefined) for await (const r of readStream(streamName, { fromRevision: from })) applyMembershipChange(m, membershipChangeOf(r.event));
    membership.set(host, m);
    return m;
  };

  /** the stream's latest events by (lower-case) ESDB id, to tell re-sent ids: retries from conflicts */
  const recentIds = async (streamName: string): Promise<{ ids: Map<string, EsdbRecord>; revision: bigint | undefined; position: bigint }> => {
    const ids = new Map<string, EsdbRecord>();
    let revision: bigint | undefined;
    let position = 0n;
    for await (const r of records(client.readStream(streamName, { direction: BACKWARDS, fromRevision: END, maxCount: window }))) {
      if (revision === undefined) {
        revision = r.revision;
        position = r.position?.commit ?? 0n;
      }
      ids.set(r.id.toLowerCase(), r);
    }
    return { ids, revision, position };
  };

  /** where an event of this append that holds a re-sent id went: its revision, and its commit position read back */
  const refOfAppended = async (streamName: string, revision: bigint): Promise<StoredEventRef> => {
    for await (const r of readStream(streamName, { fromRevision: revision, maxCount: 1 })) return toStoredEventRef(r);
    throw new IllegalStateError(`${streamName}@${revision}: just appended, but not found`);
  };

  const appendToStream = async (streamName: string, events: readonly IommuEvent[], opts: AppendOptions = {}): Promise<AppendResult> => {
    assertOpen();
    assertAppendable(streamName, events);
    const mapped = events.map(toEsdbEvent);
    const recent = await recentIds(streamName);
    // id → the event holding it: stored (one of the recent ones), or the index of a fresh event of this append
    const stored = new Map<string, RecordedEvent>();
    const freshIndex = new Map<string, number>();
    const outcomes: AppendOutcome[] = [];
    const conflicts: { index: number; stored: RecordedEvent | number }[] = [];
    const fresh: { event: IommuEvent; data: ReturnType<typeof toEsdbEvent> }[] = [];
    mapped.forEach((m, i) => {
      const record = recent.ids.get(m.id);
      const earlier = freshIndex.get(m.id);
      let holder: RecordedEvent | number | undefined = earlier;
      if (record) {
        holder = stored.get(m.id) ?? fromEsdbRecord(record);
        stored.set(m.id, holder);
      }
      if (holder === undefined) {
        freshIndex.set(m.id, fresh.length);
        outcomes.push('appended');
        fresh.push({ event: events[i]!, data: m });
      } else if (sameEventContent(typeof holder === 'number' ? fresh[holder]!.event : holder.event, events[i]!)) outcomes.push('duplicate');
      else {
        outcomes.push('conflict');
        conflicts.push({ index: i, stored: holder });
      }
    });
    const storedConflicts = (): AppendConflict[] =>
      conflicts.flatMap((c) => (typeof c.stored === 'number' ? [] : [{ index: c.index, stored: toStoredEventRef(c.stored) }]));
    if (fresh.length === 0) return { nextExpectedRevision: recent.revision ?? -1n, lastPosition: recent.position, outcomes, conflicts: storedConflicts() };
    // membership as of before this append (read first, so the cold rebuild does not see these events)
    const members = await membershipOf(streamName, fresh[0]!.event.host);
    let result;
    try {
      result = await client.appendToStream(
        streamName,
        fresh.map((f) => jsonEvent({ id: f.data.id, type: f.data.type, data: f.data.data, metadata: f.data.metadata })),
        { expectedRevision: toExpectedRevision(opts.expectedRevision ?? 'any') },
      );
    } catch (error) {
      throw convertEsdbError(error, streamName);
    }
    // index links: revisions of the fresh events are the last fresh.length revisions
    const first = result.nextExpectedRevision - BigInt(fresh.length) + 1n;
    const links = new Map<string, { id: string; target: string }[]>();
    fresh.forEach((f, i) => {
      for (const key of fileUnderKeys(f.event, members)) {
        const s = indexStream(f.event.host, key);
        const list = links.get(s) ?? [];
        list.push({ id: linkEventId(f.data.id, s), target: `${first + BigInt(i)}@${streamName}` });
        links.set(s, list);
      }
    });
    try {
      for (const [s, list] of links) {
        await client.appendToStream(
          s,
          list.map((l) => binaryEvent({ id: l.id, type: '$>', data: Buffer.from(l.target) })),
          { expectedRevision: ANY },
        );
      }
    } catch (error) {
      throw convertEsdbError(error, streamName);
    }
    // conflicts with events of this very append: located once they are stored
    const resolved: AppendConflict[] = [];
    for (const c of conflicts) {
      resolved.push({ index: c.index, stored: typeof c.stored === 'number' ? await refOfAppended(streamName, first + BigInt(c.stored)) : toStoredEventRef(c.stored) });
    }
    return { nextExpectedRevision: result.nextExpectedRevision, lastPosition: result.position?.commit ?? 0n, outcomes, conflicts: resolved };
  };

  async function* limited(source: AsyncIterable<RecordedEvent>, keep: (r: RecordedEvent) => boolean, maxCount?: number): AsyncGenerator<RecordedEvent> {
    let left = maxCount ?? Number.POSITIVE_INFINITY;
    if (left <= 0) return;
    for await (const r of source) {
      if (!keep(r)) continue;
      yield r;
      if (--left <= 0) return;
    }
  }

  async function* mapRecords(source: AsyncIterable<EsdbRecord>, userOnly: boolean): AsyncGenerator<RecordedEvent> {
    for await (const r of source) {
      if (userOnly && !isUserRecord(r.streamId, r.type)) continue;
      yield fromEsdbRecord(r);
    }
  }

  const readStream = (streamName: string, opts: ReadStreamOptions = {}): AsyncIterable<RecordedEvent> => {
    assertOpen();
    const backwards = opts.direction === 'backwards';
    const from = opts.fromRevision ?? (backwards ? 'end' : 'start');
    const fromRevision = from === 'start' ? START : from === 'end' ? END : from;
    const until = opts.toPosition;
    const events = mapRecords(
      records(
        client.readStream(streamName, {
          direction: backwards ? BACKWARDS : FORWARDS,
          fromRevision,
          // with a position bound, events past it must not count
          ...(opts.maxCount !== undefined && until === undefined ? { maxCount: opts.maxCount } : {}),
        }),
      ),
      false,
    );
    return until === undefined ? events : limited(upTo(events, until, backwards), () => true, opts.maxCount);
  };

  /** a stream's events at or before a global position: forwards, positions rise with revisions, so the read stops at the first past it */
  async function* upTo(source: AsyncIterable<RecordedEvent>, until: bigint, backwards: boolean): AsyncGenerator<RecordedEvent> {
    for await (const r of source) {
      if (r.globalPosition <= until) yield r;
      else if (!backwards) return;
    }
  }

  const readAllFrom = (after: bigint): AsyncIterable<RecordedEvent> =>
    mapRecords(records(client.readAll({ direction: FORWARDS, fromPosition: after === 0n ? START : { commit: after, prepare: after } })), true);

  const readAll = (opts: ReadAllOptions = {}): AsyncIterable<RecordedEvent> => {
    assertOpen();
    const after = opts.after ?? 0n;
    return limited(readAllFrom(after), (r) => r.globalPosition > after, opts.maxCount);
  };

  const readByIndex = (opts: ReadByIndexOptions): AsyncIterable<RecordedEvent> => {
    assertOpen();
    const after = opts.after ?? 0n;
    const inTime = (r: RecordedEvent): boolean => {
      const t = BigInt(r.event.time);
      return (opts.fromTimeNs === undefined || t >= opts.fromTimeNs) && (opts.toTimeNs === undefined || t <= opts.toTimeNs);
    };
    const key = opts.device !== undefined ? deviceKey(opts.device) : opts.group !== undefined ? groupKey(opts.group) : undefined;
    if (key === undefined) return limited(readStream(`host-${opts.host}`), (r) => r.globalPosition > after && inTime(r), opts.maxCount);
    const readIndex = (k: string): AsyncIterable<RecordedEvent> =>
      mapRecords(records(client.readStream(indexStream(opts.host, k), { resolveLinkTos: true })), false);
    const group = opts.device !== undefined && opts.group !== undefined ? opts.group : undefined;
    async function* intersected(): AsyncGenerator<RecordedEvent> {
      // device and group: the device's links, kept when the group's index links the same event
      const inGroup = new Set<string>();
      if (group !== undefined) for await (const r of readIndex(groupKey(group))) inGroup.add(r.event.id);
      for await (const r of readIndex(key!)) if (group === undefined || inGroup.has(r.event.id)) yield r;
    }
    return limited(intersected(), (r) => r.globalPosition > after && inTime(r), opts.maxCount);
  };

  const loadCheckpoint = async (name: string): Promise<bigint | undefined> => {
    for await (const r of records(client.readStream(checkpointStream(name), { direction: BACKWARDS, fromRevision: END, maxCount: 1 }))) {
      const p = (r.data as { position?: unknown }).position;
      if (typeof p === 'string' && /^[0-9]+$/.test(p)) return BigInt(p);
    }
    return undefined;
  };
  const storeCheckpoint = async (name: string, position: bigint): Promise<void> => {
    try {
      await client.appendToStream(checkpointStream(name), jsonEvent({ type: 'CheckpointStored', data: { position: position.toString() } }), { expectedRevision: ANY });
    } catch (error) {
      throw convertEsdbError(error);
    }
  };

  const subscribe = async (opts: SubscribeOptions): Promise<Subscription> => {
    assertOpen();
    if (!opts.subscriberName) throw new ValidationError('subscriberName: must not be empty', [{ path: 'subscriberName', message: 'must not be empty' }]);
    const batchSize = opts.batchSize ?? 500;
    let position = (await loadCheckpoint(opts.subscriberName)) ?? opts.fromPosition ?? 0n;
    let stopped = false;
    let failure: { error: unknown } | undefined;
    const subscription = client.subscribeToAll({ fromPosition: position === 0n ? START : { commit: position, prepare: position } });
    subscription.once('caughtUp', () => opts.onCaughtUp?.());
    const deliver = async (batch: RecordedEvent[]): Promise<boolean> => {
      try {
        await opts.handle(batch);
      } catch (error) {
        failure = { error };
        opts.onError?.(error);
        return false;
      }
      position = batch.at(-1)!.globalPosition;
      await storeCheckpoint(opts.subscriberName, position);
      return true;
    };
    const running = (async () => {
      // live events arrive one by one: deliver what has accumulated whenever the stream pauses or a batch fills
      let batch: RecordedEvent[] = [];
      try {
        for await (const resolved of subscription) {
          if (stopped) break;
          const r = toRecord(resolved);
          if (!r || !isUserRecord(r.streamId, r.type)) continue;
          const rec = fromEsdbRecord(r);
          if (rec.globalPosition <= position) continue;
          batch.push(rec);
          if (batch.length >= batchSize || subscription.readableLength === 0) {
            const ok = await deliver(batch);
            batch = [];
            if (!ok) break;
          }
        }
      } catch (error) {
        if (!stopped) {
          failure = { error: convertEsdbError(error) };
          opts.onError?.(failure.error);
        }
      }
      await subscription.unsubscribe().catch(() => undefined);
    })();
    return {
      position: () => position,
      stop: async () => {
        stopped = true;
        await subscription.unsubscribe().catch(() => undefined);
        await running;
        if (failure) throw failure.error;
      },
    };
  };

  const headPosition = async (): Promise<bigint> => {
    for await (const r of records(client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1 }))) return r.position?.commit ?? 0n;
    return 0n;
  };

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    if (options.ownsClient ?? true) await client.dispose();
  };

  // EventStoreDB writes one stream per append (no multi-stream transaction): a multi-stream append is one
  // append per stream, in order
  return { appendToStream, appendToStreams: appendEach(appendToStream), readStream, readAll, readByIndex, subscribe, headPosition, close };
};
