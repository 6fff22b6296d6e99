import { join } from 'node:path';
import { createEventBuilder, hostStreamName, type IommuEvent } from '../../schemas/index.js';
import { getSqliteEventStore, type EventStore } from '../../services/shared/eventStore/index.js';
import { createIngestConsumer } from '../../services/shared/kafka/ingestConsumer.js';
import { createKafka } from '../../services/shared/kafka/kafkaClient.js';
import { createKafkaPublisher } from '../../services/shared/kafka/producer.js';
import { startTestBroker } from '../../services/shared/kafka/testing/broker.js';
import { waitFor } from '../../services/shared/kafka/testing/waitFor.js';
import { defineFigure, type Measurement } from '../harness.js';

/**
 * Issue 7: Kafka transport on a real single-node broker (started here, full JIT).
 * - pipeline: publish N events (idempotent, acks=all, gzip) while the ingest consumer validates them and
 *   appends them durably (SQLite, durability full), clock from the first publish to the last durable append;
 * - ingest: the same consumer on the already-filled topic (consume + validate + durable append + commit);
 * - reference: a bare kafkajs consumer on the same topic in the same run, counting messages (no decode);
 * - and the store alone (the same events appended directly), which bounds what any ingest path can reach.
 * Both consumers are timed from their first batch, so the group join is not counted on either side.
 */
const HOSTS = 16;
const PARTITIONS = 4;
const TOPIC = 'bench.events';
const CHUNK = 5000;
const SLOW_JOIN = { sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1_000 } as const;

/** the fleet's events in publish order, built lazily so 1e6 events never sit in memory at once */
function* fleetChunks(total: number): Generator<IommuEvent[]> {
  const builders = Array.from({ length: HOSTS }, (_, h) => createEventBuilder({ host: `bench-${h}` }));
  let chunk: IommuEvent[] = [];
  for (let i = 0; i < total; i += 1) {
    const b = builders[i % HOSTS]!;
    // raw (unvalidated) is valid by construction here; the consumer validates every one
    const e = i % 2 === 0 ? b.raw('DriverBound', { device: '0000:03:00.0', driver: 'vfio-pci' }) : b.raw('DriverUnbound', { device: '0000:03:00.0' });
    chunk.push(e as IommuEvent);
    if (chunk.length === CHUNK) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length > 0) yield chunk;
}

/** records when the first append starts: the consumer's first batch */
const timedStore = (store: EventStore): { store: EventStore; firstAppendNs: () => bigint | undefined } => {
  let first: bigint | undefined;
  return {
    store: {
      ...store,
      appendToStream: (stream, events, options) => {
        first ??= process.hrtime.bigint();
        return store.appendToStream(stream, events, options);
      },
    },
    firstAppendNs: () => first,
  };
};

const rate = (events: number, ns: bigint): number => events / (Number(ns) / 1e9);

export default defineFigure({
  name: 'kafka',
  issue: 7,
  sizes: { quick: [1e4], full: [1e5, 1e6] },
  async measure(size, ctx) {
    const broker = await startTestBroker({ jvmOpts: '-Xms1g -Xmx1g -XX:+UseSerialGC' });
    ctx.log(`broker started in ${Math.round(broker.startMs)} ms`);
    const stores: EventStore[] = [];
    try {
      await broker.createTopics([
        { topic: TOPIC, numPartitions: PARTITIONS },
        { topic: `${TOPIC}.dlq`, numPartitions: 1 },
      ]);
      const openStore = (name: string): EventStore => {
        const s = getSqliteEventStore({ path: join(ctx.tmpDir, `${name}.sqlite`), durability: 'full', keyDir: false });
        stores.push(s);
        return s;
      };
      const ingest = async (name: string, fill?: () => Promise<void>): Promise<{ ns: bigint; firstNs: bigint }> => {
        const timed = timedStore(openStore(name));
        const consumer = createIngestConsumer({ brokers: broker.brokers, store: timed.store, topic: TOPIC, dlqTopic: `${TOPIC}.dlq`, groupId: name, partitionsConsumedConcurrently: PARTITIONS, ...SLOW_JOIN });
        await consumer.start();
        await waitFor(`${name}: partitions assigned`, () => consumer.assigned().length, (n) => n === PARTITIONS, 60_000);
        const t0 = process.hrtime.bigint();
        await fill?.();
        await waitFor(`${name}: ${size} stored`, () => consumer.stats().stored, (n) => n >= size, 1_800_000, 5);
        const t1 = process.hrtime.bigint();
        await consumer.stop();
        const stats = consumer.stats();
        if (stats.stored !== size || stats.deadLettered !== 0) throw new Error(`${name}: stored ${stats.stored}, dead-lettered ${stats.deadLettered}, expected ${size} stored`);
        return { ns: t1 - t0, firstNs: t1 - (timed.firstAppendNs() ?? t0) };
      };

      // 1. pipeline: produce while consuming and storing
      const publisher = createKafkaPublisher({ brokers: broker.brokers, topic: TOPIC });
      await publisher.start();
      let publishNs = 0n;
      const pipeline = await ingest('pipeline', async () => {
        const p0 = process.hrtime.bigint();
        // a few chunks outstanding so requests overlap with building the next chunk; the buffer bounds memory
        const pending: Promise<void>[] = [];
        for (const chunk of fleetChunks(size)) {
          pending.push(publisher.publish(chunk));
          if (pending.length >= 4) await pending.shift();
        }
        await Promise.all(pending);
        await publisher.flush();
        publishNs = process.hrtime.bigint() - p0;
      });
      await publisher.stop();
      const pipelineRate = rate(size, pipeline.ns);
      ctx.log(`publish alone: ${Math.round(rate(size, publishNs))} events/s (idempotent, acks=all, gzip)`);

      // 2. raw kafkajs consume of the same topic (reference)
      const rawConsumer = createKafka({ brokers: broker.brokers, clientId: 'bench-raw' }).consumer({ groupId: 'raw', ...{ sessionTimeout: SLOW_JOIN.sessionTimeoutMs, heartbeatInterval: SLOW_JOIN.heartbeatIntervalMs } });
      await rawConsumer.connect();
      await rawConsumer.subscribe({ topic: TOPIC, fromBeginning: true });
      let seen = 0;
      let rawFirst: bigint | undefined;
      let rawLast = 0n;
      await rawConsumer.run({
        partitionsConsumedConcurrently: 2,
        eachBatch: async ({ batch }) => {
          rawFirst ??= process.hrtime.bigint();
          seen += batch.messages.length;
          if (seen >= size) rawLast = process.hrtime.bigint();
        },
      });
      await waitFor('raw: every message', () => seen, (n) => n >= size, 1_800_000, 5);
      await rawConsumer.disconnect();
      const rawRate = rate(size, rawLast - (rawFirst ?? rawLast));

      // 3. ingest only: the same consumer on the filled topic, from its first batch
      const ingestOnly = await ingest('ingest');
      const ingestRate = rate(size, ingestOnly.firstNs);

      // 4. the store alone: the same events appended in the same shape (per-host groups, appended together)
      const direct = openStore('direct');
      await direct.ready?.();
      const d0 = process.hrtime.bigint();
      // as many chunks in flight as the consumer has partitions in hand
      const inFlight: Promise<unknown>[] = [];
      for (const chunk of fleetChunks(size)) {
        const byHost = new Map<string, IommuEvent[]>();
        for (const e of chunk) {
          const list = byHost.get(e.host);
          if (list) list.push(e);
          else byHost.set(e.host, [e]);
        }
        inFlight.push(Promise.all([...byHost].map(([host, events]) => direct.appendToStream(hostStreamName(host), events, { expectedRevision: 'any' }))));
        if (inFlight.length >= PARTITIONS) await inFlight.shift();
      }
      await Promise.all(inFlight);
      const directRate = rate(size, process.hrtime.bigint() - d0);

      const reference = { label: 'kafkajs raw consume (same topic, same run)', value: rawRate, kind: 'raw-limit' as const };
      const m: Measurement[] = [
        { label: 'end to end: publish + consume + validate + durable append', value: pipelineRate, unit: 'events/s', higherIsBetter: true, reference, targetRatio: 0.5 },
        { label: 'ingest: consume + validate + durable append + commit', value: ingestRate, unit: 'events/s', higherIsBetter: true, reference, targetRatio: 0.5 },
        {
          label: 'ingest vs the store alone (same events, same append shape)',
          value: ingestRate,
          unit: 'events/s',
          higherIsBetter: true,
          reference: { label: 'SQLite appendToStream alone, durability full', value: directRate, kind: 'raw-limit' },
        },
      ];
      return m;
    } finally {
      await Promise.allSettled(stores.map((s) => s.close()));
      await broker.stop();
    }
  },
});
