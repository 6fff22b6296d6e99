import { v7 as uuidv7 } from 'uuid';
import type { EventData, EventType, IommuEvent, IommuEventInput } from './catalogue.js';
import { currentVersionOf } from './catalogue.js';
import type { Actor } from './envelope.js';
import { assertEvent } from './parse.js';

type Source = IommuEvent['source'];

export interface EventBuilderOptions {
  readonly host: string;
  /** wall-clock ns of the first event; each event advances by `stepNs` @defaultValue 1_000_000n */
  readonly startNs?: bigint;
  readonly stepNs?: bigint;
  readonly source?: Source;
  /** first sequence number @defaultValue 1 */
  readonly firstSeq?: number;
}

export interface EventExtras {
  readonly actor?: Actor;
  readonly correlationId?: string;
  readonly labels?: string[];
  /** jump the clock to this ns before this event */
  readonly atNs?: bigint;
}

/** input data as a producer writes it: un-branded strings, defaults optional */
type DataInput<T extends EventType> = Extract<IommuEventInput, { type: T }>['data'];

/**
 * Mints envelopes with deterministic ids (UUIDv7 whose random part is derived from host and seq), a
 * per-host sequence and a clock. Pure: same options, same calls, same events. Used by tests, fixtures,
 * the simulator and benchmarks.
 */
export const createEventBuilder = (options: EventBuilderOptions) => {
  let seq = options.firstSeq ?? 1;
  let now = options.startNs ?? 1_732_400_000_000_000_000n;
  const step = options.stepNs ?? 1_000_000n;
  const hostHash = hashString(options.host);
  const random = new Uint8Array(16);

  const raw = <T extends EventType>(type: T, data: DataInput<T>, extras: EventExtras = {}): IommuEventInput => {
    if (extras.atNs !== undefined) now = extras.atNs;
    const thisSeq = seq++;
    const time = now;
    now += step;
    fillRandom(random, hostHash, thisSeq);
    const id = uuidv7({ msecs: Number(time / 1_000_000n), random });
    const event: Record<string, unknown> = {
      id,
      type,
      schemaVersion: currentVersionOf(type),
      host: options.host,
      seq: thisSeq,
      time: time.toString(),
      source: options.source ?? 'simulator',
      data,
    };
    if (extras.actor) event.actor = extras.actor;
    if (extras.correlationId) event.correlationId = extras.correlationId;
    if (extras.labels) event.labels = extras.labels;
    return event as IommuEventInput;
  };

  return {
    /** a raw producer-side event (not validated): for generating large volumes fast */
    raw,
    /** a validated, normalised event: for tests and fixtures */
    event: <T extends EventType>(type: T, data: DataInput<T>, extras?: EventExtras): Extract<IommuEvent, { type: T }> =>
      assertEvent(raw(type, data, extras)) as Extract<IommuEvent, { type: T }>,
    get nextSeq() {
      return seq;
    },
    get nowNs() {
      return now;
    },
  };
};
export type EventBuilder = ReturnType<typeof createEventBuilder>;
export type { EventData };

const hashString = (s: string): number => {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
};

const fillRandom = (out: Uint8Array, hostHash: number, seq: number): void => {
  let x = (hostHash ^ Math.imul(seq, 2654435761)) >>> 0;
  for (let i = 0; i < 16; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = (x ^ (seq >>> ((i % 4) * 8))) & 0xff;
  }
};
