import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEventBuilder, hostStreamName } from '../../../schemas/index.js';
import { getSqliteEventStore, type SqliteEventStore } from '../eventStore/sqlite/sqliteEventStore.js';
import { PUBLIC_KEY_FILE, readPublicKey } from '../eventStore/sqlite/tamper/signing.js';
import { verifyConsistency } from '../eventStore/format/merkle.js';
import { logOrigin, openLogCheckpoint, storeConsistencyProof } from '../eventStore/sqlite/tamper/tlogStore.js';
import { describeWithEngine } from '../testing/engines.js';
import { createCheckpointPublisher } from './checkpointPublisher.js';
import { createKafka } from './kafkaClient.js';
import { createKafkaPublisher } from './producer.js';
import { kafkaAvailability, startTestBroker, type TestBroker } from './testing/broker.js';
import { waitFor } from './testing/waitFor.js';

const availability = await kafkaAvailability();

/** follows a topic from the beginning, as a witness would */
const follow = async (brokers: string[], topic: string): Promise<{ seen: KafkaMessage[]; stop: () => Promise<void> }> => {
  const consumer = createKafka({ brokers }).consumer({ groupId: `witness-${topic}-${Date.now()}` });
  const seen: KafkaMessage[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void seen.push(message) });
  return { seen, stop: () => consumer.disconnect() };
};

describeWithEngine('kafka', availability, 'Kafka > checkpoint publisher', () => {
  let broker: TestBroker;
  let dir: string;
  let store: SqliteEventStore;
  const host = createEventBuilder({ host: 'node-a' });
  const append = async (n: number): Promise<void> => {
    await store.appendToStream(hostStreamName('node-a'), Array.from({ length: n }, () => host.event('DriverBound', { device: '0000:03:00.0', driver: 'vfio-pci' })));
    await store.seal();
  };
  beforeAll(async () => {
    broker = await startTestBroker();
    await broker.createTopics([
      { topic: 'cp.follow', numPartitions: 2 },
      { topic: 'cp.events', numPartitions: 1 },
      { topic: 'cp.dlq', numPartitions: 1 },
      { topic: 'cp.cli', numPartitions: 1 },
    ]);
    dir = mkdtempSync(join(tmpdir(), 'iommutrail-cp-'));
    store = getSqliteEventStore({ path: join(dir, 'events.sqlite'), durability: 'normal', writer: 'inline' });
  }, 180_000);
  afterAll(async () => {
    await store?.close();
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('given a store cutting checkpoints, when the publisher follows it, then a witness reading the topic gets each signed checkpoint in order, each opens under the log origin and key, and each extends the one before', async () => {
    await append(3);
    const publisher = createCheckpointPublisher({ db: store.db, brokers: broker.brokers, topic: 'cp.follow', intervalMs: 50 });
    const witness = await follow(broker.brokers, 'cp.follow');
    try {
      await publisher.start();
      // two more cuts while the publisher follows on its own timer
      await append(4);
      await waitFor('the second checkpoint published', () => publisher.publishedSize(), (s) => s === 7);
      await append(5);
      await waitFor('three checkpoints read by the witness', () => witness.seen.length, (n) => n >= 3);
    } finally {
      await publisher.stop();
      await witness.stop();
    }
    const origin = logOrigin(store.db)!;
    const key = readPublicKey(join(dir, PUBLIC_KEY_FILE));
    expect(witness.seen.map((m) => m.key?.toString())).toEqual([origin, origin, origin]);
    const opened = witness.seen.map((m) => {
      const c = openLogCheckpoint(m.value!.toString(), origin, [key]);
      if (!c.ok) throw new Error(c.reason);
      expect(m.headers?.['tree-size']?.toString()).toBe(String(c.value.checkpoint.size));
      return c.value.checkpoint;
    });
    expect(opened.map((c) => c.size)).toEqual([3, 7, 12]);
    for (let i = 1; i < opened.length; i++) {
      const [a, b] = [opened[i - 1]!, opened[i]!];
      expect(verifyConsistency(a.size, b.size, a.root, b.root, storeConsistencyProof(store.db, a.size, b.size))).toBe(true);
    }
  });

  it('given nothing new since the last publish, when asked to publish, then it sends nothing (no duplicate checkpoint)', async () => {
    const publisher = createCheckpointPublisher({ db: store.db, brokers: broker.brokers, topic: 'cp.follow', from: 'all' });
    try {
      await publisher.start();
      expect(publisher.publishedSize()).toBe(12);
      expect(await publisher.publishNew()).toBe(0);
    } finally {
      await publisher.stop();
    }
  });

  it('given ingest-kafka run with --checkpoint-topic, when it stores events, then the checkpoints it cuts reach that topic', async () => {
    const storePath = join(dir, 'ingest.sqlite');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'services/cli/main.ts', 'ingest-kafka', '--brokers', broker.brokers.join(','), '--topic', 'cp.events', '--dlq-topic', 'cp.dlq', '--group', 'cp', '--store', storePath, '--checkpoint-topic', 'cp.cli'],
      { cwd: join(import.meta.dirname, '../../..'), env: { ...process.env, IOMMUTRAIL_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => void (stderr += d.toString()));
    const witness = await follow(broker.brokers, 'cp.cli');
    try {
      await waitFor('ingest-kafka ready', () => stderr, (s) => s.includes('ingest-kafka: consuming') || child.exitCode !== null);
      const publisher = createKafkaPublisher({ brokers: broker.brokers, topic: 'cp.events' });
      await publisher.start();
      const b = createEventBuilder({ host: 'node-k' });
      await publisher.publish(Array.from({ length: 5 }, () => b.event('DriverBound', { device: '0000:03:00.0', driver: 'vfio-pci' })));
      await publisher.stop();
      const seen = await waitFor('a checkpoint of 5 leaves on cp.cli', () => witness.seen.map((m) => m.headers?.['tree-size']?.toString()), (sizes) => sizes.includes('5'));
      expect(seen.at(-1)).toBe('5');
      expect(witness.seen.at(-1)!.value!.toString()).toMatch(/^iommutrail\.local\/log-[0-9a-f]{16}\n5\n/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
      await witness.stop();
    }
  });
});
