import { describe, expect, it } from 'vitest';
import type { IommuEvent, RecordedEvent } from '../schemas/index.js';
import { createFleetProjection } from './fleetProjection.js';
import { fromSnapshot, toSnapshot } from './snapshots.js';
import { generateHistory } from './testing/generateHistory.js';
import { ProjectionSpecification } from './testing/projectionSpecification.js';
import { AUDIO, GPU, NIC, createScenario } from './testing/scenarioEvents.js';
import { swapChunks } from './testing/swapChunks.js';
import { foldEvents } from './timeTravel.js';
import { stateAsOf } from './testing/timeTravel.js';
import type { FleetState, Violation } from './types.js';

const FA = 'qemu:3';
const allow = { allowSequenceIssues: true };

/** the kernel state and the non-sequence violations of a fold, as a comparable value */
const kernelView = (state: FleetState) => {
  const v = (x: Violation) => ({ key: x.key, opened: x.opened.eventId, closed: x.closed?.eventId ?? null, evidence: x.evidence, message: x.message });
  const notSeq = (x: Violation) => !x.ruleId.startsWith('sequence-');
  return {
    hosts: Object.fromEntries(
      Object.values(state.hosts).map((h) => [
        h.host,
        { groups: h.groups, devices: h.devices, iommufds: h.iommufds, containers: h.containers, deviceFds: h.deviceFds, groupFds: h.groupFds, uncertain: h.uncertain },
      ]),
    ),
    open: Object.values(state.violations.open).filter(notSeq).map(v).sort((a, b) => a.key.localeCompare(b.key)),
    // per host in fold order (hosts interleave differently in the two deliveries)
    closed: Object.keys(state.hosts).map((host) => state.violations.closed.filter((x) => x.host === host && notSeq(x)).map(v)),
  };
};

const recorded = (events: readonly IommuEvent[]): RecordedEvent[] =>
  events.map((event, i) => ({ event, streamName: `host-${event.host}`, streamPosition: BigInt(i), globalPosition: BigInt(i + 1) }));

describe('Fleet projection > reorder buffer', () => {
  it('hardening #1: 500-event chunks delivered with every pair swapped fold to exactly the state in-order delivery gives', () => {
    // given a realistic history of 3 hosts and the same events with each host's chunk pairs swapped
    const events = generateHistory({ events: 9_000, hosts: 3 });
    const swapped = swapChunks(events, 500);
    expect(swapped).not.toEqual(events);
    // when both deliveries are folded
    const projection = createFleetProjection();
    const inOrder = foldEvents(projection, events);
    const reordered = foldEvents(projection, swapped);
    // then groups, devices, contexts, fds and every non-sequence violation (with its events) are the same
    expect(kernelView(inOrder).closed.flat().length).toBeGreaterThan(0);
    expect(kernelView(reordered)).toEqual(kernelView(inOrder));
    // and every gap settled: nothing held, no sequence violation open, each fill recorded as information
    for (const h of Object.values(reordered.hosts)) expect([h.held, h.appliedSeq, h.uncertain]).toEqual([[], h.lastSeq, null]);
    expect(Object.values(reordered.violations.open).filter((v) => v.ruleId.startsWith('sequence-'))).toEqual([]);
    expect(new Set(reordered.violations.closed.filter((v) => v.ruleId.startsWith('sequence-')).map((v) => v.ruleId))).toEqual(
      new Set(['sequence-gap', 'sequence-late-arrival']),
    );
  });

  it('hardening #1: a gap that never fills is applied at the hold bound and stands: sequence-gap stays open, the host is uncertain', () => {
    const s = createScenario();
    const first = [s.topology(), s.open(NIC, 'q:5')];
    const lost = s.open(NIC, 'q:6'); // seq 3, arrives only at the end
    const after = [s.open(NIC, 'q:7'), s.close(NIC, 'q:7'), s.open(NIC, 'q:8')]; // seqs 4..6
    const fourth = s.open(NIC, 'q:9'); // seq 7
    const spec = ProjectionSpecification.for(createFleetProjection({ maxHeldEvents: 3 }));
    // given three events held behind seq 3: the state is the state before the gap
    spec
      .given([...first, ...after], allow)
      .thenOpen([{ ruleId: 'sequence-gap' }])
      .thenDevice(NIC, { openFds: ['q:5'] })
      .then(({ state }) => expect(state.hosts['host-a']!.held.map((x) => x.event.seq)).toEqual([4, 5, 6]))
      // when a fourth passes the bound, all four are applied in seq order past the gap
      .when([fourth])
      .thenOpened([])
      .thenOpen([{ ruleId: 'sequence-gap' }])
      .thenDevice(NIC, { openFds: ['q:5', 'q:8', 'q:9'] })
      .then(({ state }) => {
        const host = state.hosts['host-a']!;
        expect([host.held, host.appliedSeq, host.uncertain?.since.seq]).toEqual([[], 7, 4]);
        expect(host.sequence.gaps.map((g) => [g.from, g.to])).toEqual([[3, 3]]);
      });
    // and when the lost event finally comes it fills the gap, applied out of order: the host stays uncertain
    spec
      .given([...first, ...after, fourth], allow)
      .when([lost])
      .thenClosed([{ ruleId: 'sequence-gap' }, { ruleId: 'sequence-late-arrival' }])
      .thenOpen([])
      .thenDevice(NIC, { openFds: ['q:5', 'q:8', 'q:9', 'q:6'] })
      .then(({ state }) => expect(state.hosts['host-a']!.uncertain?.since.seq).toBe(4));
  });

  it('hardening #1: held events survive a JSON snapshot round trip and drain after it', () => {
    const s = createScenario();
    const head = [s.topology(), s.open(GPU, 'q:5')];
    const missing = s.bind(GPU, 'q:5', FA, 1);
    const tail = [s.open(AUDIO, 'q:6'), s.bind(AUDIO, 'q:6', FA, 2)];
    const projection = createFleetProjection();
    // given a state holding two events behind seq 3, snapshotted to JSON and restored
    const before = foldEvents(projection, [...head, ...tail]);
    const restored = fromSnapshot(JSON.parse(JSON.stringify(toSnapshot(before))), { owned: true });
    expect(restored.hosts['host-a']!.held).toEqual(before.hosts['host-a']!.held);
    expect(restored.hosts['host-a']!.held).toHaveLength(2);
    // when the missing event arrives after the restore
    const after = projection.evolve(restored, missing);
    // then the result equals folding everything without the round trip, and the gap settled in seq order
    const straight = foldEvents(projection, [...head, ...tail, missing]);
    expect(after).toEqual(straight);
    expect(after.hosts['host-a']!.groups['7']).toMatchObject({ userOwner: { kind: 'iommufd', handle: FA }, userOwnerCount: 2, uncertain: false });
  });

  it('hardening #1: time travel to a position inside a held range shows the state before the gap', () => {
    const s = createScenario();
    const head = [s.topology(), s.open(GPU, 'q:5')];
    const missing = s.bind(GPU, 'q:5', FA, 1); // seq 3
    const tail = [s.open(AUDIO, 'q:6'), s.bind(AUDIO, 'q:6', FA, 2)]; // seqs 4, 5
    const stream = recorded([...head, ...tail, missing]); // positions 1..5, seq 3 at position 5
    const projection = createFleetProjection();
    // when the state is asked for at position 4 (seqs 4 and 5 recorded, seq 3 not yet)
    const at4 = stateAsOf(projection, { at: { position: 4n }, events: stream });
    // then it is the state after seq 2: no bind of either function, the two later events held
    expect(at4.hosts['host-a']!.devices[GPU]).toMatchObject({ openFds: ['q:5'], boundFd: null });
    expect(at4.hosts['host-a']!.devices[AUDIO]).toMatchObject({ openFds: [], boundFd: null });
    expect(at4.hosts['host-a']!.groups['7']).toMatchObject({ userOwner: null, uncertain: false });
    expect(at4.hosts['host-a']!.held.map((x) => x.position)).toEqual(['3', '4']);
    // and at position 5 the fill applies all three in seq order
    const at5 = stateAsOf(projection, { at: { position: 5n }, events: stream });
    expect(at5.hosts['host-a']!.groups['7']).toMatchObject({ userOwnerCount: 2, uncertain: false });
    expect(at5.hosts['host-a']!.held).toEqual([]);
  });

  it('a topology snapshot beyond a gap re-bases the host: the held events before it are applied, it becomes the frontier', () => {
    const s = createScenario();
    const head = [s.topology(), s.open(GPU, 'q:5')];
    s.bind(GPU, 'q:5', FA, 1); // seq 3, lost for good
    const held = s.open(AUDIO, 'q:6'); // seq 4
    const snapshot = s.topology(); // seq 5
    const next = s.close(AUDIO, 'q:6'); // seq 6
    ProjectionSpecification.for(createFleetProjection())
      .given([...head, held], allow)
      .when([snapshot, next])
      .thenClosed([{ ruleId: 'sequence-gap' }])
      .thenDevice(AUDIO, { openFds: [] })
      .then(({ state }) => {
        const host = state.hosts['host-a']!;
        expect([host.held, host.appliedSeq, host.uncertain]).toEqual([[], 6, null]);
      });
  });

  it("a host's first event beyond seq 1 waits for the events before it; a first topology snapshot is a start", () => {
    const s = createScenario();
    const events = [s.topology(), s.open(GPU, 'q:5'), s.bind(GPU, 'q:5', FA, 1)];
    ProjectionSpecification.for(createFleetProjection())
      .given(events.slice(1), allow)
      .thenOpen([{ ruleId: 'sequence-gap' }])
      .then(({ state }) => {
        expect(Object.values(state.violations.open)[0]!.key).toBe('sequence-gap|host-a|1..1');
        expect(state.hosts['host-a']!.devices).toEqual({});
      })
      .when([events[0]!])
      .thenClosed([{ ruleId: 'sequence-gap' }, { ruleId: 'sequence-late-arrival' }])
      .thenGroup(7, { userOwnerCount: 1, uncertain: false });
    const late = createScenario('host-a', undefined);
    const fromTen = [late.topology()].map((e) => ({ ...e, seq: 10 }));
    ProjectionSpecification.for(createFleetProjection())
      .given(fromTen)
      .then(({ state }) => expect([state.hosts['host-a']!.appliedSeq, state.hosts['host-a']!.held]).toEqual([10, []]));
  });

  it('an event the fold could not take is passed over: the events held after it are applied, not held forever', () => {
    const s = createScenario();
    const events = [s.topology(), s.open(NIC, 'q:5'), s.open(NIC, 'q:6'), s.close(NIC, 'q:5')];
    const projection = createFleetProjection();
    // given seq 3 never reached the fold (it threw on it) and seq 4 is held behind it
    const state = foldEvents(projection, [events[0]!, events[1]!, events[3]!]);
    expect(state.hosts['host-a']!.held).toHaveLength(1);
    // when the caller passes over seq 3
    projection.passOver(state, events[2]!);
    // then seq 4 is applied and nothing waits
    expect(state.hosts['host-a']!).toMatchObject({ appliedSeq: 4, lastSeq: 4, held: [] });
    expect(state.hosts['host-a']!.devices[NIC]!.openFds).toEqual([]);
  });
});
