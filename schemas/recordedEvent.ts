import type { IommuEvent } from './catalogue.js';

/** `START` / `END` markers for reads, as strings so they never collide with a real position */
export const START = 'start' as const;
export const END = 'end' as const;

/**
 * An event as a store hands it back: the catalogue event plus where it sits. Every source (SQLite,
 * EventStoreDB, Kafka, a history file) yields these, so projections and the replayer don't care where
 * events come from. Positions are bigint: they are 64-bit in every store.
 */
export interface RecordedEvent<E extends IommuEvent = IommuEvent> {
  readonly event: E;
  readonly streamName: string;
  /** 0-based revision inside its stream */
  readonly streamPosition: bigint;
  /** position in the store's global order (commit order), 1-based */
  readonly globalPosition: bigint;
}

/** per-host stream: per-host order is the order of its stream */
export const hostStreamName = (host: string): string => `host-${host}`;
export const hostOfStream = (streamName: string): string | undefined => (streamName.startsWith('host-') ? streamName.slice(5) : undefined);
