import type { Database } from 'better-sqlite3';
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { ValidationError } from '../../../schemas/index.js';
import { logOrigin } from '../eventStore/sqlite/tamper/tlogStore.js';
import { convertKafkaError } from './kafkaErrors.js';
import { createKafka } from './kafkaClient.js';

/** where a store's signed checkpoints are published @defaultValue */
export const DEFAULT_CHECKPOINTS_TOPIC = 'iommu.checkpoints';

export interface CheckpointPublisherOptions {
  /** a connection to the SQLite store whose transparency log is published (a read-only one is enough) */
  readonly db: Database;
  /** bootstrap addresses; or pass a ready {@link kafka} client */
  readonly brokers?: readonly string[];
  readonly kafka?: Kafka;
  /** @defaultValue {@link DEFAULT_CHECKPOINTS_TOPIC} */
  readonly topic?: string;
  /** how often the store is looked at for a new checkpoint (the store cuts one per checkpoint interval) @defaultValue 1000 */
  readonly intervalMs?: number;
  /** `'latest'`: start with the newest checkpoint the store holds; `'all'`: every one, oldest first @defaultValue 'latest' */
  readonly from?: 'latest' | 'all';
  readonly logger?: Logger;
}

export interface CheckpointPublisher {
  /** connects, publishes what is due now, then follows the store every `intervalMs` */
  start(): Promise<void>;
  /** publishes the checkpoints cut since the last one published, oldest first; resolves with how many */
  publishNew(): Promise<number>;
  /** stops following, then disconnects (a publish in flight finishes first) */
  stop(): Promise<void>;
  /** the tree size of the last checkpoint the broker acknowledged (0: none yet) */
  readonly publishedSize: () => number;
}

/**
 * Publishes a store's signed checkpoints (C2SP signed notes, exactly as stored) to a Kafka topic as they are
 * cut, so that witnesses and auditors can follow the log from outside the data folder: a later rewrite or
 * truncation of the store then contradicts a checkpoint that already left it. One message per checkpoint:
 * key = the log's origin (one partition per log, in order), value = the signed note, headers `origin` and
 * `tree-size`. Idempotent producer, acks from every in-sync replica; a consumer keys by (origin, tree size),
 * since delivery is at least once. A failed send is logged and retried at the next look.
 */
export const createCheckpointPublisher = (options: CheckpointPublisherOptions): CheckpointPublisher => {
  const topic = options.topic ?? DEFAULT_CHECKPOINTS_TOPIC;
  if (topic.length === 0) throw new ValidationError('topic: must not be empty', [{ path: 'topic', message: 'empty' }]);
  const intervalMs = options.intervalMs ?? 1000;
  if (!Number.isSafeInteger(intervalMs) || intervalMs < 10) throw new ValidationError(`intervalMs: expected an integer >= 10, got ${intervalMs}`, [{ path: 'intervalMs', message: 'expected an integer >= 10' }]);
  if (!options.kafka && !options.brokers) throw new ValidationError('brokers: give brokers or a kafka client', [{ path: 'brokers', message: 'missing' }]);
  const logger = options.logger?.child({ component: 'kafka.checkpoints' });
  const kafka = options.kafka ?? createKafka({ brokers: options.brokers!, ...(logger ? { logger } : {}) });
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  const newer = options.db.prepare<[number], { size: bigint | number; note: string }>('SELECT size, note FROM tlog_checkpoints WHERE size > ? ORDER BY size');
  const newest = options.db.prepare<[], { size: bigint | number | null }>('SELECT max(size) AS size FROM tlog_checkpoints');
  let published = 0;
  let started = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<number> | undefined;

  const send = async (): Promise<number> => {
    if (!started) {
      // 'latest': everything before the newest checkpoint counts as already out
      if ((options.from ?? 'latest') === 'latest') published = Math.max(0, Number(newest.get()?.size ?? 0) - 1);
      started = true;
    }
    const due = newer.all(published).map((r) => ({ size: Number(r.size), note: r.note }));
    if (due.length === 0) return 0;
    const origin = logOrigin(options.db) ?? '';
    try {
      await producer.send({
        topic,
        acks: -1,
        messages: due.map((c) => ({ key: origin, value: c.note, headers: { 'content-type': 'text/plain; charset=utf-8', origin, 'tree-size': String(c.size) } })),
      });
    } catch (e) {
      throw convertKafkaError(e, `publishing checkpoints to ${topic}`);
    }
    published = due.at(-1)!.size;
    logger?.info({ topic, origin, size: published, count: due.length }, 'kafka.checkpoints.published');
    return due.length;
  };
  // one publish at a time: the timer and a caller never send the same checkpoint twice
  const publishNew = (): Promise<number> => {
    const run = (inFlight ?? Promise.resolve(0)).catch(() => 0).then(send);
    inFlight = run;
    return run;
  };
  let following = false;
  const follow = (): void => {
    if (!following) return;
    timer = setTimeout(() => {
      publishNew().then(follow, (e: unknown) => {
        logger?.warn({ err: e, topic }, 'kafka.checkpoints.publish_failed');
        follow();
      });
    }, intervalMs);
  };

  return {
    start: async () => {
      await producer.connect();
      await publishNew();
      following = true;
      follow();
    },
    publishNew,
    stop: async () => {
      following = false;
      if (timer) clearTimeout(timer);
      await inFlight?.catch(() => 0);
      await producer.disconnect();
    },
    publishedSize: () => published,
  };
};
