import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createFleetProjection, type DomainRef, type HostState, type UserOwner } from '../../projections/index.js';
import {
  VARIANTS,
  decideAndEvolve,
  isObservation,
  isOperationEvent,
  observeAndEvolve,
  recordedOutcomeOf,
  replayHistory,
  toOperation,
  type ModelState,
} from '../../replay/index.js';
import { parseEvent, type IommuEvent } from '../../schemas/index.js';
import { simulateFleet, type SimulateFleetOptions } from './simulateFleet.js';

/**
 * One model of the kernel (issue 16): the simulator asks the upstream decider for every outcome, so any
 * simulated fleet replays on `upstream` without a divergence, and the fleet projection of what it recorded
 * agrees with the replay model's state after every event. Seeds, sizes and topologies (the host profiles a
 * seed draws, with every profile present from 5 hosts) come from fast-check.
 */

const fleets: fc.Arbitrary<SimulateFleetOptions> = fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  hosts: fc.integer({ min: 1, max: 7 }),
  events: fc.integer({ min: 50, max: 2500 }),
  mistakeRate: fc.double({ min: 0, max: 1, noNaN: true }),
  concurrency: fc.integer({ min: 1, max: 8 }),
  traces: fc.boolean(),
});

const recorded = (options: SimulateFleetOptions): IommuEvent[] =>
  [...simulateFleet(options)].map((input, i) => {
    const parsed = parseEvent(input, `events[${i}]`);
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.value;
  });

const upstream = VARIANTS.upstream;
const sorted = (names: readonly string[]): string[] => [...names].sort();

const ownerOf = (model: ModelState, group: number): UserOwner | null => {
  const owner = model.groups.get(group)?.owner ?? null;
  if (owner === null) return null;
  return owner.kind === 'ictx' ? { kind: 'iommufd', handle: owner.ictx } : { kind: 'legacy-container', handle: owner.container };
};

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

/**
 * The fields both states hold, in the projection's vocabulary: per group its members, user owner, owner_cnt
 * (the user count when owned, else the kernel DMA-API drivers), domain, igroup->device_list, container and
 * legacy group fd; per device its driver and group; the open device fds and the iommufd each is bound to.
 */
const common = (host: HostState | undefined, model: ModelState) => {
  const fromModel = {
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
  };
  const fromProjection = {
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
  };
  return { fromModel, fromProjection };
};

describe('simulator ↔ upstream decider ↔ projection (one model, issue 16)', () => {
  it('onemodel: any simulated fleet replayed on upstream gives zero divergences, and every recorded id is the one the decider allocates', async () => {
    await fc.assert(
      fc.asyncProperty(fleets, async (options) => {
        const report = await replayHistory({ variant: 'upstream', events: recorded(options) });
        expect(report.summary).toMatchObject({ divergences: 0, crashedHosts: 0, inputErrors: 0 });
        for (const host of report.hosts) expect({ host: host.host, renamed: host.results[0]!.renamedIds }).toEqual({ host: host.host, renamed: 0 });
      }),
      { numRuns: 25 },
    );
  });

  it('onemodel: the projection of a simulated history equals the upstream model state after every event (groups, devices, fds)', () => {
    fc.assert(
      fc.property(fleets, (options) => {
        const projection = createFleetProjection();
        const fleet = projection.initialState();
        const models = new Map<string, ModelState>();
        for (const [i, event] of recorded(options).entries()) {
          projection.evolve(fleet, event);
          let model = models.get(event.host);
          if (!model) models.set(event.host, (model = upstream.initialState()));
          if (isObservation(event)) observeAndEvolve(upstream, model, event);
          else if (isOperationEvent(event)) {
            // the simulator's ids are the decider's own: no recorded ↔ replayed renaming to apply
            const { decision } = decideAndEvolve(upstream, model, toOperation(event, (_ictx, id) => id, () => undefined));
            // what the decider returns is what was recorded (a record may carry more, e.g. the mapped iova)
            expect({ at: i, type: event.type, outcome: recordedOutcomeOf(event) }).toMatchObject({ at: i, type: event.type, outcome: decision.outcome });
          }
          const { fromModel, fromProjection } = common(fleet.hosts[event.host], model);
          if (JSON.stringify(fromModel) !== JSON.stringify(fromProjection)) expect({ at: i, event, state: fromProjection }).toEqual({ at: i, event, state: fromModel });
        }
      }),
      { numRuns: 15 },
    );
  });
});
