import { createFleetProjection, type DomainRef, type FleetState, type HostState, type UserOwner } from '../../projections/index.js';
import { isObservation, isOperationEvent } from '../../projections/kernel/operations.js';
import type { ModelState } from '../../projections/kernel/types.js';
import type { IommuEvent } from '../../schemas/index.js';
import { VARIANTS } from '../variants.js';

/**
 * The facts the fleet projection (projections/fleetProjection.ts) and a protocol model's state both hold
 * about one host, each in the projection's vocabulary, so that the two can be compared after every event
 * (issue 16: one model of the kernel). Per group: members, user owner, owner_cnt (the user count when
 * owned, else the kernel DMA-API drivers), domain (kind, hwpt and ctx, container), igroup->device_list,
 * container and legacy group fd; per device: driver and group; per open device fd: device, path and ctx.
 */
export interface SharedFacts {
  readonly groups: Readonly<Record<string, unknown>>;
  readonly devices: Readonly<Record<string, { readonly driver: string | null; readonly group: number | null }>>;
  readonly fds: Readonly<Record<string, { readonly device: string; readonly via: string; readonly ictx: string | null }>>;
}

const sorted = (names: readonly string[]): string[] => [...names].sort();

const ownerOf = (model: ModelState, group: number): UserOwner | null => {
  const owner = model.groups.get(group)?.owner ?? null;
  if (owner === null) return null;
  return owner.kind === 'ictx' ? { kind: 'iommufd', handle: owner.ictx } : { kind: 'legacy-container', handle: owner.container };
};

/** the group's domain: the model keeps it per device, and upstream moves whole groups */
const domainOf = (model: ModelState, devices: readonly string[]): DomainRef => {
  const d = model.devices.get(devices[0] ?? '')?.domain ?? { kind: 'default' };
  switch (d.kind) {
    case 'hwpt':
      return { kind: 'hwpt', hwptId: d.hwpt, ictx: d.ictx };
    case 'container':
      return { kind: 'container', container: d.container };
    default:
      return { kind: d.kind };
  }
};

/** what a protocol model's state says */
export const factsOfModel = (model: ModelState): SharedFacts => ({
  groups: Object.fromEntries(
    [...model.groups.values()]
      .filter((g) => g.devices.length > 0)
      .map((g) => [
        String(g.id),
        {
          members: sorted(g.devices),
          owner: ownerOf(model, g.id),
          ownerCnt: g.ownerCnt,
          domain: domainOf(model, g.devices),
          attached: sorted(g.attached),
          container: g.container,
          groupFd: g.groupFd,
        },
      ]),
  ),
  devices: Object.fromEntries([...model.devices.values()].map((d) => [d.name, { driver: d.driver, group: d.group }])),
  fds: Object.fromEntries([...model.fds.values()].map((f) => [f.handle, { device: f.device, via: f.via, ictx: f.ictx }])),
});

/** what the fleet projection's host state says */
export const factsOfProjection = (host: HostState | undefined): SharedFacts => ({
  groups: Object.fromEntries(
    Object.values(host?.groups ?? {})
      .filter((g) => g.members.length > 0)
      .map((g) => [
        String(g.group),
        {
          members: sorted(g.members),
          owner: g.userOwner === null ? null : { kind: g.userOwner.kind, handle: g.userOwner.handle },
          ownerCnt: g.userOwner === null ? g.kernelDmaDrivers : g.userOwnerCount,
          domain: { ...g.domain },
          attached: sorted(g.attachedDevices),
          container: g.container,
          groupFd: g.legacyGroupFd,
        },
      ]),
  ),
  devices: Object.fromEntries(Object.values(host?.devices ?? {}).map((d) => [d.device, { driver: d.driver, group: d.group }])),
  fds: Object.fromEntries(Object.values(host?.deviceFds ?? {}).map((f) => [f.fd, { device: f.device, via: f.via, ictx: f.boundIctx }])),
});

/** the paths (`groups.7.owner`, `devices.<bdf>`, `fds.<fd>`) where the two states disagree; empty when they agree */
export const crossModelDifferences = (host: HostState | undefined, model: ModelState): string[] => {
  const a = factsOfModel(model);
  const b = factsOfProjection(host);
  const out: string[] = [];
  for (const part of ['groups', 'devices', 'fds'] as const) {
    const keys = new Set([...Object.keys(a[part]), ...Object.keys(b[part])]);
    for (const k of [...keys].sort()) {
      const x = (a[part] as Record<string, unknown>)[k];
      const y = (b[part] as Record<string, unknown>)[k];
      if (x === undefined || y === undefined || part !== 'groups') {
        if (JSON.stringify(x) !== JSON.stringify(y)) out.push(`${part}.${k}`);
        continue;
      }
      for (const f of Object.keys({ ...(x as object), ...(y as object) })) {
        if (JSON.stringify((x as Record<string, unknown>)[f]) !== JSON.stringify((y as Record<string, unknown>)[f])) out.push(`${part}.${k}.${f}`);
      }
    }
  }
  return out;
};

/** one step of {@link foldSideBySide}: the event, the projection's host after it, and that host's upstream model after it */
export interface SideBySideStep {
  readonly at: number;
  readonly event: IommuEvent;
  readonly host: HostState | undefined;
  readonly model: ModelState;
}

/**
 * Folds a history through the fleet projection and, per host, through the upstream model's `evolve` of the
 * recorded events (the replay model's transition), handing both over after every event: the one fold every
 * cross-model test compares.
 */
export const foldSideBySide = (events: Iterable<IommuEvent>, step: (s: SideBySideStep) => void): { fleet: FleetState; models: Map<string, ModelState> } => {
  const upstream = VARIANTS.upstream;
  const projection = createFleetProjection();
  const fleet = projection.initialState();
  const models = new Map<string, ModelState>();
  let at = 0;
  for (const event of events) {
    projection.evolve(fleet, event);
    let model = models.get(event.host);
    if (!model) models.set(event.host, (model = upstream.initialState()));
    if (isObservation(event) || isOperationEvent(event)) upstream.evolve(model, event);
    step({ at: at++, event, host: fleet.hosts[event.host], model });
  }
  return { fleet, models };
};
