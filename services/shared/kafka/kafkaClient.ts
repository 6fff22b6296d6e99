import { Kafka, logLevel, type KafkaConfig, type LogEntry, type RetryOptions, type logCreator } from 'kafkajs';
import type { Logger } from 'pino';
import { ValidationError } from '../../../schemas/index.js';

/** the topic every publisher writes and the ingest consumer reads @defaultValue */
export const DEFAULT_EVENTS_TOPIC = 'iommu.events';
/** where the ingest consumer parks messages it cannot store */
export const DEFAULT_DLQ_TOPIC = 'iommu.events.dlq';

/**
 * kafkajs' own defaults change with NODE_ENV=test (vitest sets it); ours never do, so tests and production
 * retry alike. Callers that want fast failure pass their own.
 */
export const DEFAULT_KAFKA_RETRY: RetryOptions = { initialRetryTime: 300, retries: 8, maxRetryTime: 10_000, factor: 0.2, multiplier: 2 };

export interface CreateKafkaOptions {
  /** bootstrap addresses, `host:port` */
  readonly brokers: readonly string[];
  /** @defaultValue 'iommutrail' */
  readonly clientId?: string;
  readonly logger?: Logger;
  /** @defaultValue {@link DEFAULT_KAFKA_RETRY} */
  readonly retry?: RetryOptions;
  /** @defaultValue 3000 */
  readonly connectionTimeoutMs?: number;
}

const BROKER_RE = /^[^\s:]+:\d{1,5}$/;

/** validates the broker list (fail fast, naming the bad entry) and builds the kafkajs client with our logger */
export const createKafka = (options: CreateKafkaOptions): Kafka => {
  if (options.brokers.length === 0) throw new ValidationError('brokers: at least one host:port is required', [{ path: 'brokers', message: 'empty' }]);
  options.brokers.forEach((b, i) => {
    if (!BROKER_RE.test(b)) throw new ValidationError(`brokers[${i}]: expected host:port, got ${JSON.stringify(b)}`, [{ path: `brokers[${i}]`, message: 'expected host:port' }]);
  });
  const config: KafkaConfig = {
    clientId: options.clientId ?? 'iommutrail',
    brokers: [...options.brokers],
    retry: options.retry ?? DEFAULT_KAFKA_RETRY,
    connectionTimeout: options.connectionTimeoutMs ?? 3000,
    logLevel: logLevel.WARN,
    logCreator: toLogCreator(options.logger),
  };
  return new Kafka(config);
};

// kafkajs warns about these on every producer; both are deliberate here (see producer.ts)
const EXPECTED_WARNINGS = ['KafkaJS v2.0.0 switched default partitioner', 'Limiting retries for the idempotent producer'];

const toLogCreator = (logger: Logger | undefined): logCreator => () => {
  const log = logger?.child({ component: 'kafkajs' });
  return ({ level, log: entry }: LogEntry) => {
    if (!log) return;
    const { message, ...rest } = entry;
    if (level === logLevel.WARN && EXPECTED_WARNINGS.some((w) => message.startsWith(w))) return;
    if (level === logLevel.ERROR || level === logLevel.NOTHING) log.error(rest, message);
    else if (level === logLevel.WARN) log.warn(rest, message);
    else if (level === logLevel.INFO) log.info(rest, message);
    else log.debug(rest, message);
  };
};
