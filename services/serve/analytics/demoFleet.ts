import { ValidationError } from '../../../schemas/index.js';
import type { EventStore } from '../../shared/eventStore/eventStore.js';
import { createIngestService, type IngestService } from '../../shared/ingest/ingestService.js';
import { simulateDemoFleet } from '../../simulator/simulateFleet.js';
import type { SimulateFleetOptions } from '../../simulator/simulateFleet.js';

export interface LoadDemoFleetResult {
  readonly generated: number;
  readonly appended: number;
  /** already stored (the demo fleet is deterministic: loading it twice adds nothing) */
  readonly duplicates: number;
  readonly hosts: readonly string[];
}

/**
 * Stores the simulator's demo fleet through the ingest pipeline (the one HTTP, the CLI and Kafka use), in
 * deliveries of `chunk` events. The live projection and the analytics sink pick them up from the store. Given
 * a bare store, a pipeline over it (no sequence warnings; the facts are the projection's anyway).
 */
export const loadDemoFleet = async (target: EventStore | Pick<IngestService, 'ingest'>, overrides: SimulateFleetOptions = {}, chunk = 1000): Promise<LoadDemoFleetResult> => {
  const pipeline = 'ingest' in target ? target : createIngestService({ store: target });
  let generated = 0;
  let appended = 0;
  let duplicates = 0;
  const hosts = new Set<string>();
  let pending: unknown[] = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const from = generated - pending.length;
    const r = await pipeline.ingest(pending, (i) => `demo[${from + i}]`);
    pending = [];
    const bad = r.results.find((x) => x.status === 'rejected' || x.status === 'conflict');
    if (bad) throw new ValidationError(`the simulator produced an event that cannot be stored: ${(bad.errors ?? []).map((e) => `${e.path}: ${e.message}`).join('; ')}`, bad.errors ?? []);
    appended += r.accepted;
    duplicates += r.duplicate;
    for (const x of r.results) if (x.host !== undefined) hosts.add(x.host);
  };
  for (const input of simulateDemoFleet(overrides)) {
    pending.push(input);
    generated++;
    if (pending.length >= chunk) await flush();
  }
  await flush();
  return { generated, appended, duplicates, hosts: [...hosts].sort() };
};
