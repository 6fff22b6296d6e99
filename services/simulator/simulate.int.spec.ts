import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaMessage } from 'kafkajs';
import { main } from '../cli/main.js';
import { createKafka } from '../shared/kafka/kafkaClient.js';
import { kafkaAvailability, startTestBroker, type TestBroker } from '../shared/kafka/testing/broker.js';
import { describeWithEngine } from '../shared/testing/engines.js';
import { TEST_TOKENS, startTestService, type TestService } from '../serve/testing/service.js';
import { simulateFleet } from './simulateFleet.js';
import { sendToHttp } from './sinks.js';

describe('simulator → the real service (POST /v1/events)', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(async () => service?.dispose());

  it('given a simulated fleet, when sent over HTTP, then the service accepts every event, and a resend is all duplicates', async () => {
    const options = { seed: 5, hosts: 6, events: 3000, mistakeRate: 0.2 };
    const first = await sendToHttp(simulateFleet(options), { url: `${service.url}/v1/events`, token: TEST_TOKENS.ingest, batchSize: 500 });
    expect(first).toMatchObject({ events: 3000, accepted: 3000, rejected: 0 });
    const again = await sendToHttp(simulateFleet(options), { url: `${service.url}/v1/events`, token: TEST_TOKENS.ingest, batchSize: 500 });
    expect(again).toMatchObject({ accepted: 0, duplicate: 3000, rejected: 0 });
  });
});

const availability = await kafkaAvailability();

describeWithEngine('kafka', availability, 'simulator → Kafka (simulate --to-kafka)', () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startTestBroker();
    await broker.createTopics([{ topic: 'sim.events', numPartitions: 2 }]);
  });
  afterAll(async () => broker?.stop());

  it('given a broker, when simulate runs with --to-kafka, then every event is one message keyed by its host', async () => {
    const code = await main(['simulate', '--seed', '8', '--hosts', '3', '--events', '300', '--to-kafka', broker.brokers.join(','), '--topic', 'sim.events', '--quiet']);
    expect(code).toBe(0);
    const consumer = createKafka({ brokers: broker.brokers }).consumer({ groupId: `sim-reader-${Date.now()}` });
    const seen: KafkaMessage[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic: 'sim.events', fromBeginning: true });
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(message);
          if (seen.length >= 300) resolve();
        },
      });
    });
    await consumer.disconnect();
    expect(seen).toHaveLength(300);
    for (const m of seen) expect(m.key?.toString()).toBe((JSON.parse(m.value!.toString()) as { host: string }).host);
  });
});
