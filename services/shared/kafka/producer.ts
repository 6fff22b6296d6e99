import { CompressionTypes, Partitioners, type Kafka, type Message, type Producer, type RetryOptions } from 'kafkajs';
import type { Logger } from 'pino';
import { IllegalStateError, ValidationError, type AppErrorUnion, type IommuEvent } from '../../../schemas/index.js';
import { convertKafkaError } from './kafkaErrors.js';
import { DEFAULT_EVENTS_TOPIC, createKafka } from './kafkaClient.js';

/** gzip is built into kafkajs; snappy/lz4/zstd would need extra native codec packages, so they are not offered */
export type PublisherCompression = 'gzip' | 'none';

export interface KafkaPublisherOptions {
  /** bootstrap addresses; or pass a ready {@link kafka} client */
  readonly brokers?: readonly string[];
  readonly kafka?: Kafka;
  /** @defaultValue 'iommu.events' */
  readonly topic?: string;
  readonly logger?: Logger;
  /** @defaultValue 'gzip' */
  readonly compression?: PublisherCompression;
  /** most messages in one produce request @defaultValue 5000 */
  readonly maxBatchSize?: number;
  /** how long a partial batch waits for more events before it is sent @defaultValue 5 */
  readonly lingerMs?: number;
  /**
   * most events held in memory, queued or in flight; `publish` waits while the buffer is full
   * (back-pressure instead of unbounded growth) @defaultValue 50000
   */
  readonly maxBufferedEvents?: number;
  /** kafkajs retry for sends; after it an error is surfaced to the caller */
  readonly retry?: RetryOptions;
}

export interface KafkaPublisher {
  /** connects and registers the idempotent producer id */
  start(): Promise<void>;
  /**
   * Queues the events (one message each, key = host, value = the catalogue JSON) and resolves once the broker
   * has acknowledged all of them from every in-sync replica. Rejects with {@link UnavailableError} (transient)
   * or {@link IllegalStateError} when the broker refuses them. Waits first while the buffer is full.
   */
  publish(events: readonly IommuEvent[]): Promise<void>;
  /** sends what is queued now; rejects with the first send error since the previous flush */
  flush(): Promise<void>;
  /** flushes, then disconnects */
  stop(): Promise<void>;
  /** events queued or in flight */
  readonly buffered: () => number;
}

interface Ticket {
  remaining: number;
  settled: boolean;
  resolve: () => void;
  reject: (e: AppErrorUnion) => void;
}
interface Item {
  readonly message: Message;
  readonly ticket: Ticket;
}

const positiveInt = (name: string, value: number | undefined, fallback: number, min = 1): number => {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < min) throw new ValidationError(`${name}: expected an integer >= ${min}, got ${v}`, [{ path: name, message: `expected an integer >= ${min}` }]);
  return v;
};

/** the wire form of an event: its catalogue JSON, keyed by host so a host's events share one partition, in order */
export const toKafkaMessage = (event: IommuEvent): Message => ({
  key: event.host,
  value: JSON.stringify(event),
  headers: { 'content-type': 'application/json', 'event-type': event.type },
});

/**
 * Publishes events to Kafka: idempotent producer, acks from all in-sync replicas, one request in flight (so a
 * retried request cannot overtake the next one and per-host order holds), batching with linger, and a bounded
 * buffer. Broker errors reach the caller of `publish` and of the next `flush`; nothing is dropped silently.
 */
export const createKafkaPublisher = (options: KafkaPublisherOptions): KafkaPublisher => {
  const topic = options.topic ?? DEFAULT_EVENTS_TOPIC;
  if (topic.length === 0) throw new ValidationError('topic: must not be empty', [{ path: 'topic', message: 'empty' }]);
  const maxBatchSize = positiveInt('maxBatchSize', options.maxBatchSize, 5000);
  const maxBuffered = positiveInt('maxBufferedEvents', options.maxBufferedEvents, 50_000);
  const lingerMs = positiveInt('lingerMs', options.lingerMs, 5, 0);
  if (maxBuffered < maxBatchSize) throw new ValidationError(`maxBufferedEvents (${maxBuffered}) must be >= maxBatchSize (${maxBatchSize})`, [{ path: 'maxBufferedEvents', message: 'smaller than maxBatchSize' }]);
  const compression = (options.compression ?? 'gzip') === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
  if (!options.kafka && !options.brokers) throw new ValidationError('brokers: required when no kafka client is given', [{ path: 'brokers', message: 'required' }]);
  const kafka = options.kafka ?? createKafka({ brokers: options.brokers ?? [], ...(options.logger ? { logger: options.logger } : {}) });
  const log = options.logger?.child({ component: 'kafka-publisher', topic });

  const producer: Producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    // explicit: the Java-compatible murmur2 partitioner, so Java and Node publishers agree on a host's partition
    createPartitioner: Partitioners.DefaultPartitioner,
    // finite retries: an unreachable broker must surface as an error, not hang publish forever; a caller that
    // re-publishes after that may duplicate a message, which the store's idempotent append absorbs
    retry: options.retry ?? { initialRetryTime: 200, retries: 10, maxRetryTime: 5_000 },
  });

  const queue: Item[] = [];
  let inFlight = 0;
  let state: 'new' | 'started' | 'stopping' | 'stopped' = 'new';
  let pumping = false;
  let flushRequested = false;
  let errorSinceFlush: AppErrorUnion | undefined;
  let spaceWaiters: (() => void)[] = [];
  let idleWaiters: (() => void)[] = [];

  const wakeSpace = (): void => {
    const waiters = spaceWaiters;
    spaceWaiters = [];
    for (const w of waiters) w();
  };
  const buffered = (): number => queue.length + inFlight;

  const settle = (items: readonly Item[], error: AppErrorUnion | undefined): void => {
    for (const { ticket } of items) {
      if (ticket.settled) continue;
      if (error) {
        ticket.settled = true;
        ticket.reject(error);
      } else if (--ticket.remaining === 0) {
        ticket.settled = true;
        ticket.resolve();
      }
    }
  };

  const pump = async (): Promise<void> => {
    if (pumping) return;
    pumping = true;
    try {
      while (queue.length > 0) {
        // linger: a partial batch waits briefly so concurrent publishers share one request
        if (queue.length < maxBatchSize && lingerMs > 0 && !flushRequested && state === 'started') {
          await new Promise((r) => setTimeout(r, lingerMs));
        }
        const items = queue.splice(0, maxBatchSize);
        inFlight += items.length;
        let error: AppErrorUnion | undefined;
        try {
          await producer.send({ topic, acks: -1, compression, messages: items.map((i) => i.message) });
        } catch (e) {
          error = convertKafkaError(e, `publish ${items.length} event(s) to ${topic}`);
          errorSinceFlush ??= error;
          log?.error({ err: e, count: items.length }, 'kafka.publish.failed');
        }
        inFlight -= items.length;
        settle(items, error);
        wakeSpace();
      }
    } finally {
      pumping = false;
      flushRequested = false;
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
    }
  };

  const enqueue = (events: readonly IommuEvent[]): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const ticket: Ticket = { remaining: events.length, settled: false, resolve, reject };
      for (const event of events) queue.push({ message: toKafkaMessage(event), ticket });
      void pump();
    });

  const assertStarted = (): void => {
    if (state !== 'started') throw new IllegalStateError(`kafka publisher is ${state === 'new' ? 'not started' : state}`);
  };

  const publish = async (events: readonly IommuEvent[]): Promise<void> => {
    assertStarted();
    if (events.length === 0) return;
    const acks: Promise<void>[] = [];
    // chunks no larger than the buffer, each waiting for room: memory stays bounded whatever the caller passes
    for (let i = 0; i < events.length; i += maxBatchSize) {
      const chunk = events.slice(i, i + maxBatchSize);
      while (buffered() + chunk.length > maxBuffered) await new Promise<void>((r) => spaceWaiters.push(r));
      assertStarted();
      acks.push(enqueue(chunk));
    }
    await Promise.all(acks);
  };

  const flush = async (): Promise<void> => {
    if (buffered() > 0 || pumping) {
      flushRequested = true;
      const idle = new Promise<void>((r) => idleWaiters.push(r));
      void pump();
      await idle;
      // a pump that was already lingering or sending may finish before the last items: go round again
      if (queue.length > 0) return flush();
    }
    const error = errorSinceFlush;
    errorSinceFlush = undefined;
    if (error) throw error;
  };

  return {
    start: async () => {
      if (state !== 'new') throw new IllegalStateError(`kafka publisher is ${state}; create a new one`);
      try {
        await producer.connect();
      } catch (e) {
        throw convertKafkaError(e, 'connect kafka publisher');
      }
      state = 'started';
      log?.info('kafka.publisher.started');
    },
    publish,
    flush,
    stop: async () => {
      if (state === 'stopped') return;
      const wasStarted = state === 'started';
      state = 'stopping';
      try {
        if (wasStarted) await flush();
      } finally {
        await producer.disconnect();
        state = 'stopped';
        wakeSpace();
        log?.info('kafka.publisher.stopped');
      }
    },
    buffered,
  };
};
