import type { IommuEvent } from '../../../schemas/index.js';
import { createKafkaPublisher, type KafkaPublisherOptions } from '../../shared/kafka/producer.js';
import type { DeliveryResult, EventSink } from './eventSink.js';

/**
 * Publishes through the idempotent Kafka publisher (services/shared/kafka/producer.ts). The broker has no
 * per-event verdict: an acknowledged batch is accepted as a whole; the ingest consumer judges each event
 * (duplicates by id, invalid ones to the DLQ). Broker errors surface as UnavailableError and are retried.
 */
export const createKafkaSink = async (options: KafkaPublisherOptions): Promise<EventSink> => {
  const publisher = createKafkaPublisher(options);
  await publisher.start();
  return {
    name: `kafka ${(options.brokers ?? []).join(',')}`,
    async send(events: readonly IommuEvent[]): Promise<DeliveryResult[]> {
      await publisher.publish(events);
      return events.map((e) => ({ id: e.id, status: 'accepted' as const }));
    },
    close: () => publisher.stop(),
  };
};
