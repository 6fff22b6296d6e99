import { afterAll, beforeAll, expect, it } from 'vitest';
import type { KafkaMessage } from 'kafkajs';
import { isAppError, type IommuEvent } from '../../../schemas/index.js';
import { describeWithEngine } from '../testing/engines.js';
import { createKafka } from './kafkaClient.js';
import { createKafkaPublisher } from './producer.js';
import { fleetEvents } from './testing/events.fixtures.js';
import { kafkaAvailability, startTestBroker, type TestBroker } from './testing/broker.js';

const availability = await kafkaAvailability();

/** reads `count` messages of a topic from the beginning with a plain kafkajs consumer */
const readTopic = async (brokers: string[], topic: string, count: number): Promise<{ partition: number; message: KafkaMessage }[]> => {
  const consumer = createKafka({ brokers }).consumer({ groupId: `reader-${topic}-${Date.now()}` });
  const seen: { partition: number; message: KafkaMessage }[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        seen.push({ partition, message });
        if (seen.length >= count) resolve();
      },
    });
  });
  await consumer.disconnect();
  return seen;
};

describeWithEngine('kafka', availability, 'Kafka > publisher', () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startTestBroker();
    await broker.createTopics([
      { topic: 'pub.events', numPartitions: 3 },
      { topic: 'pub.bounded', numPartitions: 2 },
    ]);
  });
  afterAll(async () => broker?.stop());

  it('given 4 hosts, when 400 events are published, then each is one message keyed by host, and each host sits in one partition in seq order', async () => {
    const publisher = createKafkaPublisher({ brokers: broker.brokers, topic: 'pub.events' });
    await publisher.start();
    const events = fleetEvents(4, 100);
    await publisher.publish(events);
    await publisher.stop();

    const seen = await readTopic(broker.brokers, 'pub.events', events.length);
    expect(seen).toHaveLength(events.length);
    const byHost = new Map<string, { partitions: Set<number>; seqs: number[] }>();
    for (const { partition, message } of seen) {
      const event = JSON.parse(message.value?.toString() ?? 'null') as IommuEvent;
      expect(message.key?.toString()).toBe(event.host);
      expect(message.headers?.['event-type']?.toString()).toBe(event.type);
      const h = byHost.get(event.host) ?? { partitions: new Set(), seqs: [] };
      h.partitions.add(partition);
      h.seqs.push(event.seq);
      byHost.set(event.host, h);
    }
    expect(byHost.size).toBe(4);
    for (const { partitions, seqs } of byHost.values()) {
      expect(partitions.size).toBe(1);
      expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    }
  });

  it('given a buffer of 50, when 1000 events are published at once, then no more than 50 are ever held and all arrive', async () => {
    const publisher = createKafkaPublisher({ brokers: broker.brokers, topic: 'pub.bounded', maxBatchSize: 25, maxBufferedEvents: 50 });
    await publisher.start();
    let maxHeld = 0;
    let done = false;
    const sampling = (async () => {
      while (!done) {
        maxHeld = Math.max(maxHeld, publisher.buffered());
        await new Promise((r) => setImmediate(r));
      }
    })();
    await publisher.publish(fleetEvents(2, 500, 'bounded'));
    done = true;
    await sampling;
    await publisher.stop();
    expect(maxHeld).toBeGreaterThan(0);
    expect(maxHeld).toBeLessThanOrEqual(50);
    expect(await readTopic(broker.brokers, 'pub.bounded', 1000)).toHaveLength(1000);
  });

  it('given a topic that does not exist, when events are published, then publish and flush reject with a kafka error instead of dropping them', async () => {
    const publisher = createKafkaPublisher({ brokers: broker.brokers, topic: 'no.such.topic', retry: { retries: 1, initialRetryTime: 50, maxRetryTime: 200 } });
    await publisher.start();
    const failure = await publisher.publish(fleetEvents(1, 3)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isAppError(failure)).toBe(true);
    expect((failure as Error).message).toMatch(/no\.such\.topic/);
    await expect(publisher.flush()).rejects.toThrow(/no\.such\.topic/);
    await publisher.stop();
  });
});
