import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IommuEvent, RecordedEvent } from '../schemas/index.js';
import { evolveWithChanges } from './diff.js';
import { createFleetProjection } from './fleetProjection.js';
import { fromSnapshot, toSnapshot } from './snapshots.js';
import { createScenario, REFERENCE_DEVICES } from './testing/scenarioEvents.js';
import { foldEvents } from './timeTravel.js';
import { createSnapshotter, stateAsOf } from './testing/timeTravel.js';

const DEVICES = REFERENCE_DEVICES.map((d) => d.device);
const GROUPS = [...new Set(REFERENCE_DEVICES.map((d) => d.group))];
const KINDS = [
  'open', 'bind', 'bindEPERM', 'attach', 'attachPasid', 'detach', 'close', 'driverVfio', 'driverKernel', 'unbindDriver',
  'refuse', 'ioas', 'ictxClose', 'groupOpen', 'groupClose', 'setLegacy', 'setIommufd', 'getFd', 'setIommu', 'access',
  'hotAdd', 'hotRemove', 'topology', 'lose',
] as const;

const opArb = fc.record({
  kind: fc.constantFrom(...KINDS),
  dev: fc.nat(DEVICES.length - 1),
  fd: fc.nat(3),
  ictx: fc.nat(1),
  id: fc.integer({ min: 2, max: 6 }),
  group: fc.nat(GROUPS.length - 1),
  tenant: fc.option(fc.constantFrom('acme', 'globex'), { nil: undefined }),
});
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

/** a random, often kernel-impossible history over the reference topology, with lost events */
const toEvents = (ops: readonly Op[], host: string): IommuEvent[] => {
  const s = createScenario(host);
  const out: IommuEvent[] = [s.topology()];
  for (const op of ops) {
    const dev = DEVICES[op.dev]!;
    const fd = `p${op.fd}:${op.dev}`;
    const ictx = `i${op.ictx}:3`;
    const group = GROUPS[op.group]!;
    const x = op.tenant ? { actor: { tenant: op.tenant } } : undefined;
    const e: IommuEvent | null = (() => {
      switch (op.kind) {
        case 'open': return s.open(dev, fd, x);
        case 'bind': return s.bind(dev, fd, ictx, op.id, x);
        case 'bindEPERM': return s.bindFail(dev, fd, ictx, 'EPERM');
        case 'attach': return s.attach(dev, fd, op.id, op.id + 10);
        case 'attachPasid': return s.attach(dev, fd, op.id, op.id + 10, op.fd);
        case 'detach': return s.detach(dev, fd);
        case 'close': return s.close(dev, fd);
        case 'driverVfio': return s.driverBound(dev, 'vfio-pci');
        case 'driverKernel': return s.driverBound(dev, 'e1000e');
        case 'unbindDriver': return s.driverUnbound(dev);
        case 'refuse': return s.driverBindRefused(dev, 'e1000e');
        case 'ioas': return s.ioasAlloc(ictx, op.id);
        case 'ictxClose': return s.iommufdClosed(ictx);
        case 'groupOpen': return s.groupOpened(group, `g${op.fd}:1`);
        case 'groupClose': return s.groupClosed(group, `g${op.fd}:1`);
        case 'setLegacy': return s.setContainer(group, `g${op.fd}:1`, 'c:1', 'legacy');
        case 'setIommufd': return s.setContainer(group, `g${op.fd}:1`, ictx, 'iommufd');
        case 'getFd': return s.getDeviceFd(group, `g${op.fd}:1`, dev, `gd${op.fd}:${op.dev}`);
        case 'setIommu': return s.setIommu('c:1');
        case 'access': return s.access(dev, fd, op.ictx === 0 ? 'EINVAL' : undefined);
        case 'hotAdd': return s.deviceAdded(dev, group);
        case 'hotRemove': return s.deviceRemoved(dev, group);
        case 'topology': return s.topology();
        case 'lose':
          s.driverUnbound(dev); // minted and never delivered: a sequence gap
          return null;
      }
    })();
    if (e) out.push(e);
  }
  return out;
};

const historyArb = fc
  .tuple(fc.array(opArb, { maxLength: 60 }), fc.array(opArb, { maxLength: 30 }))
  .map(([a, b]) => {
    // two hosts interleaved, as a store's global order would have them
    const ea = toEvents(a, 'host-a');
    const eb = toEvents(b, 'host-b');
    const out: IommuEvent[] = [];
    for (let i = 0; i < Math.max(ea.length, eb.length); i++) {
      if (ea[i]) out.push(ea[i]!);
      if (eb[i]) out.push(eb[i]!);
    }
    return out;
  });

const recorded = (events: readonly IommuEvent[]): RecordedEvent[] =>
  events.map((event, i) => ({ event, streamName: `host-${event.host}`, streamPosition: BigInt(i), globalPosition: BigInt(i + 1) }));

describe('Projection > rebuild equals incremental folding (property)', () => {
  const projection = createFleetProjection();

  it('folding from the first event equals folding in any batch split, through JSON snapshot/restore between batches', () => {
    fc.assert(
      fc.property(historyArb, fc.array(fc.nat(), { maxLength: 6 }), (events, cutSeeds) => {
        const whole = foldEvents(projection, recorded(events));
        const cuts = [...new Set(cutSeeds.map((c) => (events.length === 0 ? 0 : c % events.length)))].sort((a, b) => a - b);
        const rec = recorded(events);
        let state = projection.initialState();
        let from = 0;
        for (const cut of [...cuts, rec.length]) {
          state = foldEvents(projection, rec.slice(from, cut), { state });
          state = fromSnapshot(JSON.parse(JSON.stringify(toSnapshot(state))));
          from = cut;
        }
        expect(state).toEqual(whole);
      }),
      { numRuns: 150 },
    );
  });

  it('"as of" a position from the nearest snapshot plus a short fold equals folding up to it from zero', () => {
    fc.assert(
      fc.property(historyArb, fc.nat(), fc.integer({ min: 1, max: 9 }), (events, atSeed, every) => {
        const rec = recorded(events);
        const snapshotter = createSnapshotter(projection, { every });
        for (const r of rec) snapshotter.apply(r.event, r.globalPosition);
        const at = { position: BigInt(rec.length === 0 ? 0 : (atSeed % rec.length) + 1) };
        const snapshot = snapshotter.snapshotBefore(at);
        const after = snapshot ? rec.filter((r) => r.globalPosition > BigInt(snapshot.position!)) : rec;
        const fast = stateAsOf(projection, { snapshot, events: after, at });
        const slow = foldEvents(projection, rec, { until: at });
        expect(fast).toEqual(slow);
      }),
      { numRuns: 100 },
    );
  });

  it('evolveWithChanges leaves the same state as evolve', () => {
    fc.assert(
      fc.property(historyArb, (events) => {
        const a = foldEvents(projection, events);
        let b = projection.initialState();
        for (const e of events) evolveWithChanges(projection, b, e);
        b = fromSnapshot(toSnapshot(b));
        expect(b).toEqual(a);
      }),
      { numRuns: 50 },
    );
  });
});
