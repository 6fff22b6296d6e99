import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface KafkaIngestMetrics {
  /** messages by outcome: stored, duplicate (already in the store), dead_lettered */
  readonly messages: Counter<'outcome'>;
  /** dead-lettered messages by reason (undecodable, invalid-event, store-rejected) */
  readonly deadLetters: Counter<'reason'>;
  readonly batches: Counter;
  readonly batchSeconds: Histogram;
  /** high watermark minus the next offset to process, per partition, as of the last batch */
  readonly lag: Gauge<'topic' | 'partition'>;
  readonly assignedPartitions: Gauge;
  readonly rebalances: Counter;
}

/**
 * Registers the ingest consumer's metrics on `registry` (the service's, so `/metrics` shows them). Rates come
 * from the counters (`rate(iommutrail_kafka_ingest_messages_total[1m])`). Register once per registry.
 */
export const registerKafkaIngestMetrics = (registry: Registry): KafkaIngestMetrics => {
  const registers = [registry];
  return {
    messages: new Counter({ name: 'iommutrail_kafka_ingest_messages_total', help: 'Kafka messages handled by the ingest consumer, by outcome', labelNames: ['outcome'], registers }),
    deadLetters: new Counter({ name: 'iommutrail_kafka_ingest_dead_letters_total', help: 'messages sent to the dead-letter topic, by reason', labelNames: ['reason'], registers }),
    batches: new Counter({ name: 'iommutrail_kafka_ingest_batches_total', help: 'batches stored and committed', registers }),
    batchSeconds: new Histogram({
      name: 'iommutrail_kafka_ingest_batch_seconds',
      help: 'time to validate, store durably and commit one batch',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    lag: new Gauge({ name: 'iommutrail_kafka_ingest_lag_messages', help: 'messages behind the high watermark, per partition', labelNames: ['topic', 'partition'], registers }),
    assignedPartitions: new Gauge({ name: 'iommutrail_kafka_ingest_assigned_partitions', help: 'partitions assigned to this consumer', registers }),
    rebalances: new Counter({ name: 'iommutrail_kafka_ingest_rebalances_total', help: 'consumer group rebalances seen by this consumer', registers }),
  };
};
