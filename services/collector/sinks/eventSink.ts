import { AppError, type IommuEvent } from '../../../schemas/index.js';

export type DeliveryStatus = 'accepted' | 'duplicate' | 'rejected';

export interface DeliveryResult {
  readonly id: string;
  readonly status: DeliveryStatus;
  /** why the sink refused the event for good (field errors) */
  readonly reason?: string;
}

/**
 * Where the collector delivers: the service's HTTP ingest or Kafka. `send` resolves with one result per
 * event once the sink made them durable, or rejects: retriable errors ({@link UnavailableError}) are
 * retried with backoff, {@link BatchTooLargeError} makes the shipper send smaller batches.
 */
export interface EventSink {
  readonly name: string;
  send(events: readonly IommuEvent[]): Promise<DeliveryResult[]>;
  close(): Promise<void>;
}

/** the sink accepts fewer events per request than were sent (HTTP 413) */
export class BatchTooLargeError extends AppError {
  readonly kind = 'validation' as const;
}
