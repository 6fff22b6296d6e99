import { DEFAULT_MANAGED_DMA_DRIVERS } from '../../schemas/index.js';
import type { HostState } from '../../projections/index.js';
import { deriveReadModel, newDevice, newGroup, type HostReadModel } from '../../projections/readModel.js';

/**
 * Issue 16: the read model a fold keeps (HostState.groups/devices/iommufds/containers/deviceFds/groupFds), which
 * it derives again record by record from what each event touched, beside a whole-host derivation of the same
 * upstream kernel model (projections/readModel.ts `deriveReadModel`). The paths where they differ
 * (`groups.7.domain`, `devices.<bdf>.openFds`), empty when they agree.
 */
const PARTS = ['groups', 'devices', 'iommufds', 'containers', 'deviceFds', 'groupFds'] as const;

export const derivedReadModelOf = (host: HostState, managedDmaDrivers: readonly string[] = DEFAULT_MANAGED_DMA_DRIVERS): HostReadModel => {
  if (!host.kernel) throw new Error(`host ${host.host} has no kernel model`);
  const managed = new Set(host.capabilities?.managedDmaDrivers ?? managedDmaDrivers);
  return deriveReadModel(host.kernel, host, (d) => d !== null && !managed.has(d), { group: newGroup, device: newDevice });
};

const canon = (v: unknown): string => JSON.stringify(v);

export const readModelDifferences = (host: HostState, managedDmaDrivers?: readonly string[]): string[] => {
  const derived = derivedReadModelOf(host, managedDmaDrivers);
  const out: string[] = [];
  for (const part of PARTS) {
    const a = derived[part] as Record<string, unknown>;
    const b = host[part] as Record<string, unknown>;
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const x = a[k];
      const y = b[k];
      if (x === undefined || y === undefined || typeof x !== 'object' || x === null) {
        if (canon(x) !== canon(y)) out.push(`${part}.${k}${x === undefined ? ' (not derived)' : y === undefined ? ' (only derived)' : ''}`);
        continue;
      }
      for (const f of new Set([...Object.keys(x), ...Object.keys(y as object)])) {
        if (canon((x as Record<string, unknown>)[f]) !== canon((y as Record<string, unknown>)[f])) out.push(`${part}.${k}.${f}`);
      }
    }
  }
  return out;
};
