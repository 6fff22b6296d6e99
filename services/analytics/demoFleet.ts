import { hostStreamName, parseEvent, ValidationError, type IommuEvent } from '../../schemas/index.js';
import type { EventStore } from '../eventStore/eventStore.js';
import { simulateDemoFleet } from '../simulator/simulateFleet.js';
import type { SimulateFleetOptions } from '../simulator/simulateFleet.js';

export interface LoadDemoFleetResult {
  readonly generated: number;
  readonly appended: number;
  /** already stored (the demo fleet is deterministic: loading it twice adds nothing) */
  readonly duplicates: number;
  readonly hosts: readonly string[];
}

/**
 * Appends the simulator's demo fleet to the store (each host's events to its stream, in chunks), parsed at
 * the edge like any ingress. The analytics projector, subscribed to the store, picks them up.
 */
export const loadDemoFleet = async (store: EventStore, overrides: SimulateFleetOptions = {}, chunk = 1000): Promise<LoadDemoFleetResult> => {
  const pending = new Map<string, IommuEvent[]>();
  let generated = 0;
  let appended = 0;
  let duplicates = 0;
  const hosts = new Set<string>();
  const flush = async (host: string): Promise<void> => {
    const events = pending.get(host);
    if (events === undefined || events.length === 0) return;
    pending.set(host, []);
    const r = await store.appendToStream(hostStreamName(host), events);
    for (const o of r.outcomes) if (o === 'appended') appended++;
    else duplicates++;
  };
  for (const input of simulateDemoFleet(overrides)) {
    const parsed = parseEvent(input, `demo[${generated}]`);
    if (!parsed.ok) throw new ValidationError(`the simulator produced an invalid event: ${parsed.error.message}`, parsed.error.issues);
    generated++;
    const e = parsed.value;
    hosts.add(e.host);
    const list = pending.get(e.host) ?? [];
    list.push(e);
    pending.set(e.host, list);
    if (list.length >= chunk) await flush(e.host);
  }
  for (const host of pending.keys()) await flush(host);
  return { generated, appended, duplicates, hosts: [...hosts].sort() };
};
