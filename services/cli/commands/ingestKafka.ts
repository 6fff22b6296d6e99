import { createServer, type Server } from 'node:http';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { z } from 'zod';
import { ValidationError } from '../../../schemas/index.js';
import { loadConfig } from '../../shared/config/config.js';
import { createLogger } from '../../shared/config/logger.js';
import { openConfiguredStore } from '../../shared/eventStore/openConfiguredStore.js';
import type { SqliteEventStore } from '../../shared/eventStore/sqlite/sqliteEventStore.js';
import { createCheckpointPublisher, type CheckpointPublisher } from '../../shared/kafka/checkpointPublisher.js';
import { DEFAULT_DLQ_TOPIC, DEFAULT_EVENTS_TOPIC } from '../../shared/kafka/kafkaClient.js';
import { createIngestConsumer } from '../../shared/kafka/ingestConsumer.js';
import { registerKafkaIngestMetrics } from '../../shared/kafka/metrics.js';
import { EXIT } from '../exitCodes.js';
import type { RegisterCommand } from '../program.js';

const OptionsSchema = z.object({
  brokers: z
    .string()
    .min(1)
    .transform((s) => s.split(',').map((b) => b.trim()).filter(Boolean)),
  topic: z.string().min(1),
  dlqTopic: z.string().min(1),
  group: z.string().min(1),
  store: z.string().min(1).optional(),
  durability: z.enum(['full', 'normal']).optional(),
  config: z.string().optional(),
  sessionTimeoutMs: z.coerce.number().int().min(1000),
  concurrency: z.coerce.number().int().min(1).max(64),
  metricsPort: z.coerce.number().int().min(0).max(65535).optional(),
  metricsHost: z.string().min(1),
  checkpointTopic: z.string().min(1).optional(),
});

const listen = (server: Server, port: number, host: string): Promise<void> =>
  new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });

/**
 * `iommutrail ingest-kafka`: one member of the ingest consumer group. Run as many as there are partitions to
 * share; SIGTERM/SIGINT finish the batch in hand, commit, leave the group and exit 0.
 */
export const registerIngestKafka: RegisterCommand = (program, run) => {
  program
    .command('ingest-kafka')
    .description('consume events from Kafka into the event store (a consumer-group member; scale by running more)')
    .requiredOption('--brokers <list>', 'bootstrap brokers, comma-separated host:port')
    .option('--topic <name>', 'events topic', DEFAULT_EVENTS_TOPIC)
    .option('--dlq-topic <name>', 'dead-letter topic for messages that cannot be stored', DEFAULT_DLQ_TOPIC)
    .option('--group <id>', 'consumer group id', 'iommutrail-ingest')
    .option('--store <file>', 'SQLite event store file (default: <dataDir>/events.sqlite from the config)')
    .option('--durability <level>', 'full | normal (default: the config\'s store.durability)')
    .option('--config <file>', 'service config file (YAML or JSON)')
    .option('--session-timeout-ms <ms>', 'how long the group waits for a silent member', '30000')
    .option('--concurrency <n>', 'partitions stored at once', '2')
    .option('--metrics-port <port>', 'serve Prometheus metrics on this port (0 = any free port)')
    .option('--metrics-host <host>', 'address for the metrics server', '127.0.0.1')
    .option('--checkpoint-topic <name>', "publish the store's signed checkpoints to this topic as they are cut, for witnesses (SQLite stores)")
    .action((raw: Record<string, unknown>) =>
      run(async () => {
        const parsed = OptionsSchema.safeParse(raw);
        if (!parsed.success) {
          const issues = parsed.error.issues.map((i) => ({ path: `--${i.path.join('.').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, message: i.message }));
          throw new ValidationError(`ingest-kafka: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
        }
        const opts = parsed.data;
        const config = loadConfig({ file: opts.config });
        const logger = createLogger({ level: config.logLevel, base: { service: 'iommutrail-ingest-kafka' }, destination: 2 });
        // the configured store (EventStoreDB when store.kind says so); --store names a SQLite file instead
        const store = await openConfiguredStore({ ...config, store: { ...config.store, durability: opts.durability ?? config.store.durability } }, logger, opts.store);
        const registry = new Registry();
        collectDefaultMetrics({ register: registry });
        const consumer = createIngestConsumer({
          brokers: opts.brokers,
          store,
          logger,
          metrics: registerKafkaIngestMetrics(registry),
          topic: opts.topic,
          dlqTopic: opts.dlqTopic,
          groupId: opts.group,
          sessionTimeoutMs: opts.sessionTimeoutMs,
          partitionsConsumedConcurrently: opts.concurrency,
        });
        let metricsServer: Server | undefined;
        if (opts.metricsPort !== undefined) {
          metricsServer = createServer((req, res) => {
            if (req.url !== '/metrics') {
              res.writeHead(404).end();
              return;
            }
            registry.metrics().then(
              (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
              (e: unknown) => res.writeHead(500).end(String(e)),
            );
          });
          await listen(metricsServer, opts.metricsPort, opts.metricsHost);
          const address = metricsServer.address();
          logger.info({ metrics: typeof address === 'object' && address ? `${address.address}:${address.port}` : address }, 'kafka.ingest.metrics_listening');
        }
        const shutdown = (signal: string) => () => {
          logger.info({ signal }, 'kafka.ingest.shutdown_requested');
          void consumer.stop();
        };
        const onTerm = shutdown('SIGTERM');
        const onInt = shutdown('SIGINT');
        process.once('SIGTERM', onTerm);
        process.once('SIGINT', onInt);
        // the store's checkpoints leave the data folder as they are cut: witnesses follow the topic
        const db = 'db' in store ? (store as SqliteEventStore).db : undefined;
        if (opts.checkpointTopic !== undefined && !db) {
          await store.close();
          throw new ValidationError('--checkpoint-topic: only a SQLite store keeps a transparency log');
        }
        const checkpoints: CheckpointPublisher | undefined =
          opts.checkpointTopic !== undefined && db ? createCheckpointPublisher({ db, brokers: opts.brokers, topic: opts.checkpointTopic, logger }) : undefined;
        try {
          await checkpoints?.start();
          await consumer.start();
          // ready line for supervisors and tests: the member has joined and is consuming
          process.stderr.write(`ingest-kafka: consuming ${opts.topic} as group ${opts.group}\n`);
          await consumer.done;
        } finally {
          process.off('SIGTERM', onTerm);
          process.off('SIGINT', onInt);
          await consumer.stop();
          await checkpoints?.stop();
          await new Promise<void>((resolve) => (metricsServer ? metricsServer.close(() => resolve()) : resolve()));
          await store.close();
        }
        const stats = consumer.stats();
        process.stderr.write(`ingest-kafka: stopped; stored ${stats.stored}, duplicates ${stats.duplicates}, dead-lettered ${stats.deadLettered}\n`);
        return EXIT.ok;
      }),
    );
};
