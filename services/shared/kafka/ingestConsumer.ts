import type { Batch, Consumer, EachBatchPayload, IHeaders, Kafka, KafkaMessage, Message, Producer, RetryOptions } from 'kafkajs';
import type { Logger } from 'pino';
import { IllegalStateError, ValidationError, isAppError } from '../../../schemas/index.js';
import type { EventStore } from '../eventStore/eventStore.js';
import { createIngestService } from '../ingest/ingestService.js';
import { decodeMessageValue, type DeadLetterReason } from './decodeMessage.js';
import { convertKafkaError } from './kafkaErrors.js';
import { DEFAULT_DLQ_TOPIC, DEFAULT_EVENTS_TOPIC, createKafka } from './kafkaClient.js';
import type { KafkaIngestMetrics } from './metrics.js';

export interface IngestConsumerOptions {
  /** bootstrap addresses; or pass a ready {@link kafka} client */
  readonly brokers?: readonly string[];
  readonly kafka?: Kafka;
  readonly store: EventStore;
  readonly logger?: Logger;
  /** from {@link registerKafkaIngestMetrics} */
  readonly metrics?: KafkaIngestMetrics;
  /** @defaultValue 'iommu.events' */
  readonly topic?: string;
  /** @defaultValue 'iommu.events.dlq' */
  readonly dlqTopic?: string;
  /** @defaultValue 'iommutrail-ingest' */
  readonly groupId?: string;
  /** how long the group waits for a silent member before handing its partitions on @defaultValue 30000 */
  readonly sessionTimeoutMs?: number;
  /** @defaultValue a third of the session timeout, at most 3000 */
  readonly heartbeatIntervalMs?: number;
  /** batches of different partitions stored at once (never two of one partition) @defaultValue 2 */
  readonly partitionsConsumedConcurrently?: number;
  /** @defaultValue 1048576 */
  readonly maxBytesPerPartition?: number;
  /** messages of a batch validated before their appends go to the store, so both work at once (the ingest pipeline's slice) @defaultValue 2000 */
  readonly sliceSize?: number;
  /** kafkajs retry for a failing batch (store unavailable, broker moving); then the consumer restarts */
  readonly retry?: RetryOptions;
}

export interface IngestStats {
  readonly stored: number;
  readonly duplicates: number;
  readonly deadLettered: number;
  readonly batches: number;
}

export interface IngestConsumer {
  /** joins the group and starts consuming; resolves once running */
  start(): Promise<void>;
  /** finishes the batch in hand, commits, leaves the group, disconnects (the store stays open: the caller owns it) */
  stop(): Promise<void>;
  /** resolves when stopped, rejects if the consumer crashed for good (a non-retriable error) */
  readonly done: Promise<void>;
  readonly stats: () => IngestStats;
  /** partitions of the topic assigned to this member since the last rebalance */
  readonly assigned: () => readonly number[];
}

interface DeadLetter {
  readonly message: KafkaMessage;
  readonly reason: DeadLetterReason;
  readonly error: string;
}

const MAX_HEADER_CHARS = 4000;

/** the DLQ copy keeps the original key, value and headers, and says why and where it came from */
export const toDeadLetterMessage = (batch: Pick<Batch, 'topic' | 'partition'>, groupId: string, letter: DeadLetter): Message => {
  const headers: IHeaders = {
    ...(letter.message.headers ?? {}),
    'x-dlq-reason': letter.reason,
    'x-dlq-error': letter.error.slice(0, MAX_HEADER_CHARS),
    'x-original-topic': batch.topic,
    'x-original-partition': String(batch.partition),
    'x-original-offset': letter.message.offset,
    'x-original-timestamp': letter.message.timestamp,
    'x-consumer-group': groupId,
  };
  return { key: letter.message.key, value: letter.message.value, headers };
};

/**
 * The Kafka ingest service: a consumer-group member that hands each batch to the ingest pipeline (the one
 * HTTP, the CLI and the demo loader use: README "Ingest semantics"), parks what it cannot store in the
 * dead-letter topic (never crashing or blocking the partition), and commits offsets only after the append is durable. Delivery is
 * at-least-once; the store's idempotent append (by event id) turns a redelivery into a no-op.
 */
export const createIngestConsumer = (options: IngestConsumerOptions): IngestConsumer => {
  const topic = options.topic ?? DEFAULT_EVENTS_TOPIC;
  const dlqTopic = options.dlqTopic ?? DEFAULT_DLQ_TOPIC;
  const groupId = options.groupId ?? 'iommutrail-ingest';
  if (topic === dlqTopic) throw new ValidationError('dlqTopic: must differ from topic', [{ path: 'dlqTopic', message: 'same as topic' }]);
  if (!options.kafka && !options.brokers) throw new ValidationError('brokers: required when no kafka client is given', [{ path: 'brokers', message: 'required' }]);
  const kafka = options.kafka ?? createKafka({ brokers: options.brokers ?? [], clientId: 'iommutrail-ingest', ...(options.logger ? { logger: options.logger } : {}) });
  const { store, metrics } = options;
  const log = options.logger?.child({ component: 'kafka-ingest', topic, groupId });
  const sessionTimeout = options.sessionTimeoutMs ?? 30_000;
  const heartbeatInterval = options.heartbeatIntervalMs ?? Math.min(3_000, Math.floor(sessionTimeout / 3));
  if (heartbeatInterval >= sessionTimeout) throw new ValidationError(`heartbeatIntervalMs (${heartbeatInterval}) must be below sessionTimeoutMs (${sessionTimeout})`, [{ path: 'heartbeatIntervalMs', message: 'not below the session timeout' }]);
  const retry = options.retry ?? { initialRetryTime: 300, retries: 8, maxRetryTime: 10_000 };
  const sliceSize = options.sliceSize ?? 2_000;
  if (!Number.isSafeInteger(sliceSize) || sliceSize < 1) throw new ValidationError(`sliceSize: expected a positive integer, got ${sliceSize}`, [{ path: 'sliceSize', message: 'not a positive integer' }]);

  const consumer: Consumer = kafka.consumer({
    groupId,
    sessionTimeout,
    heartbeatInterval,
    // kafkajs heartbeats between fetches: an idle fetch that waits longer than the session timeout gets a healthy
    // member evicted (seen with a 3 s session and the 5 s default wait), so a fetch never outwaits a heartbeat
    maxWaitTimeInMs: Math.min(5_000, heartbeatInterval),
    maxBytesPerPartition: options.maxBytesPerPartition ?? 1_048_576,
    retry: {
      ...retry,
      // transient trouble (store or broker unavailable) restarts the consumer; a programmer error does not loop
      restartOnFailure: async (e) => {
        const again = !isAppError(e) || e.retriable;
        log?.error({ err: e, restart: again }, 'kafka.ingest.crashed');
        return again;
      },
    },
  });
  const dlqProducer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry });

  const counts = { stored: 0, duplicates: 0, deadLettered: 0, batches: 0 };
  let assigned: readonly number[] = [];
  let state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  let resolveDone!: () => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  // a caller that never awaits `done` must not get an unhandled rejection from it
  done.catch(() => undefined);

  const sendDeadLetters = async (batch: Batch, letters: readonly DeadLetter[]): Promise<void> => {
    if (letters.length === 0) return;
    try {
      await dlqProducer.send({ topic: dlqTopic, acks: -1, messages: letters.map((l) => toDeadLetterMessage(batch, groupId, l)) });
    } catch (e) {
      throw convertKafkaError(e, `send ${letters.length} message(s) to ${dlqTopic}`);
    }
    for (const l of letters) {
      metrics?.deadLetters.inc({ reason: l.reason });
      log?.warn({ partition: batch.partition, offset: l.message.offset, reason: l.reason, error: l.error }, 'kafka.ingest.dead_lettered');
    }
    counts.deadLettered += letters.length;
    metrics?.messages.inc({ outcome: 'dead_lettered' }, letters.length);
  };

  // the one ingest pipeline (validate, order, append, per-event outcomes), with this consumer's slice size
  const pipeline = createIngestService({ store, options: { sliceSize } });

  /**
   * A batch is one delivery through the ingest pipeline: each host's events stored in seq order, in slices so
   * the store's writer commits one slice while this thread validates the next. What cannot be stored (not
   * decodable, not a catalogue event, an id stored with other content, refused by the store) goes to the DLQ.
   */
  const handleBatch = async ({ batch, heartbeat, isRunning, isStale, resolveOffset, commitOffsetsIfNecessary }: EachBatchPayload): Promise<void> => {
    if (batch.messages.length === 0 || !isRunning() || isStale()) return;
    const endTimer = metrics?.batchSeconds.startTimer();
    const where = (i: number): string => `${batch.topic}[${batch.partition}]@${batch.messages[i]!.offset}`;
    const inputs: unknown[] = [];
    const undecodable = new Map<number, ValidationError>();
    batch.messages.forEach((message, i) => {
      const decoded = decodeMessageValue(message.value, where(i));
      inputs.push(decoded.ok ? decoded.value : undefined);
      if (!decoded.ok) undecodable.set(i, new ValidationError(decoded.error, [{ path: where(i), message: decoded.error }]));
    });
    // a failure is thrown once every append of the batch settled: kafkajs' retry of the batch never overlaps it
    const summary = await pipeline.ingest(inputs, where, undecodable);
    const letters: DeadLetter[] = [];
    for (const r of summary.results) {
      if (r.status === 'accepted' || r.status === 'duplicate') continue;
      const message = batch.messages[r.index]!;
      const issues = (r.errors ?? []).map((e) => `${e.path}: ${e.message}`).join('; ');
      if (undecodable.has(r.index)) letters.push({ message, reason: 'undecodable', error: r.errors?.[0]?.message ?? 'undecodable' });
      else if (r.status === 'conflict') letters.push({ message, reason: 'store-rejected', error: `conflict: ${r.errors?.[0]?.message ?? ''}` });
      else letters.push({ message, reason: r.rejectedBy === 'store' ? 'store-rejected' : 'invalid-event', error: r.rejectedBy === 'store' ? (r.errors?.[0]?.message ?? '') : issues });
    }
    counts.stored += summary.accepted;
    counts.duplicates += summary.duplicate;
    if (summary.accepted) metrics?.messages.inc({ outcome: 'stored' }, summary.accepted);
    if (summary.duplicate) metrics?.messages.inc({ outcome: 'duplicate' }, summary.duplicate);
    await heartbeat();
    // dead letters are durable in the DLQ before the offsets that skip them are committed
    await sendDeadLetters(batch, letters);
    // a partition revoked meanwhile is someone else's now: leave its offsets to them (the store absorbs redelivery)
    if (isStale()) return;
    const last = batch.messages[batch.messages.length - 1]!.offset;
    resolveOffset(last);
    const next = (BigInt(last) + 1n).toString();
    await commitOffsetsIfNecessary({ topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }] });
    counts.batches += 1;
    metrics?.batches.inc();
    metrics?.lag.set({ topic: batch.topic, partition: String(batch.partition) }, Number(BigInt(batch.highWatermark) - BigInt(next)));
    endTimer?.();
  };

  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    assigned = e.payload.memberAssignment[topic] ?? [];
    metrics?.assignedPartitions.set(assigned.length);
    log?.info({ partitions: assigned }, 'kafka.ingest.assigned');
  });
  consumer.on(consumer.events.REBALANCING, () => {
    assigned = [];
    metrics?.rebalances.inc();
  });
  consumer.on(consumer.events.CRASH, (e) => {
    if (!e.payload.restart) {
      state = 'stopped';
      rejectDone(e.payload.error);
    }
  });

  return {
    start: async () => {
      if (state !== 'new') throw new IllegalStateError(`ingest consumer is ${state}; create a new one`);
      try {
        await dlqProducer.connect();
        await consumer.connect();
        // a new group reads from the beginning: the store is the whole history
        await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({
          eachBatchAutoResolve: false,
          autoCommit: true,
          partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 2,
          eachBatch: handleBatch,
        });
      } catch (e) {
        await Promise.allSettled([consumer.disconnect(), dlqProducer.disconnect()]);
        state = 'stopped';
        throw isAppError(e) ? e : convertKafkaError(e, `start ingest consumer on ${topic}`);
      }
      state = 'running';
      log?.info('kafka.ingest.started');
    },
    stop: async () => {
      if (state === 'stopped' || state === 'stopping') return done.catch(() => undefined);
      state = 'stopping';
      try {
        // kafkajs waits for the batch in hand, commits what was resolved, and leaves the group
        await consumer.disconnect();
        await dlqProducer.disconnect();
      } finally {
        state = 'stopped';
        assigned = [];
        metrics?.assignedPartitions.set(0);
        resolveDone();
        log?.info(counts, 'kafka.ingest.stopped');
      }
    },
    done,
    stats: () => ({ ...counts }),
    assigned: () => assigned,
  };
};
