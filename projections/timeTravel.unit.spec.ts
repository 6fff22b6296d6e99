import { describe, expect, it } from 'vitest';
import { ValidationError, type IommuEvent, type RecordedEvent } from '../schemas/index.js';
import { diffGroupState, evolveWithChanges } from './diff.js';
import { createFleetProjection } from './fleetProjection.js';
import { cloneState, fromSnapshot } from './snapshots.js';
import { AUDIO, GPU, NIC, XHCI, createScenario } from './testing/scenarioEvents.js';
import { clockStepsAcross, foldEvents, violationsAt } from './timeTravel.js';
import { createSnapshotter, selectGroup, stateAsOf } from './testing/timeTravel.js';

const FA = 'qemu:3';
const projection = createFleetProjection();

// S17 on group 7 as a recorded stream: both functions attached to hwpt 3, then GPU detaches, then audio
const s17 = (): { events: IommuEvent[]; recorded: RecordedEvent[] } => {
  const s = createScenario('host-a');
  const events = [
    s.topology({ drivers: { [AUDIO]: 'vfio-pci' } }),
    s.open(GPU, 'q:5'),
    s.bind(GPU, 'q:5', FA, 1),
    s.open(AUDIO, 'q:6'),
    s.bind(AUDIO, 'q:6', FA, 2),
    s.ioasAlloc(FA, 2),
    s.attach(GPU, 'q:5', 2, 3), // 7: audio translated by hwpt 3 without attaching
    s.attach(AUDIO, 'q:6', 2, 3), // 8: closed
    s.detach(GPU, 'q:5'), // 9: GPU still translated by hwpt 3
    s.detach(AUDIO, 'q:6'), // 10: group blocking, closed
  ];
  const recorded = events.map((event, i) => ({ event, streamName: 'host-host-a', streamPosition: BigInt(i), globalPosition: BigInt(i + 1) }));
  return { events, recorded };
};

describe('Time travel > a host clock that is not monotonic', () => {
  // S17 with the attach that moves group 7 (event 7) dated 2100 by a host clock that jumped ahead and came back
  const withFutureEvent = () => {
    const { events } = s17();
    const future = events.map((e, i) => (i === 6 ? ({ ...e, time: '4102444800000000000' } as IommuEvent) : e));
    const recorded = future.map((event, i) => ({ event, streamName: 'host-host-a', streamPosition: BigInt(i), globalPosition: BigInt(i + 1) }));
    return { events: future, recorded };
  };

  it('hardening #5: one event dated in the future does not hide the later events of its host; the clock step is named', () => {
    const { events, recorded } = withFutureEvent();
    const at = { timeNs: BigInt(events[9]!.time) };
    const state = stateAsOf(projection, { events: recorded, at });
    expect(state.hosts['host-a']!.eventCount).toBe(10);
    expect(state).toEqual(foldEvents(projection, recorded));
    expect(clockStepsAcross(state.hosts['host-a']!, at.timeNs).map((c) => c.event.eventId)).toEqual([events[7]!.id]);
    // before the jump nothing depends on it, and the state is the plain prefix
    const early = { timeNs: BigInt(events[5]!.time) };
    expect(stateAsOf(projection, { events: recorded, at: early }).hosts['host-a']!.eventCount).toBe(6);
    expect(clockStepsAcross(state.hosts['host-a']!, early.timeNs)).toEqual([]);
  });

  it('hardening #5: every time-travel path answers the same at every time: a fold to T, a snapshot plus a fold, violations from the end state', () => {
    const { events, recorded } = withFutureEvent();
    const end = foldEvents(projection, recorded);
    const snapshotter = createSnapshotter(projection, { every: 3 });
    for (const r of recorded) snapshotter.apply(r.event, r.globalPosition);
    const times = [...events.map((e) => BigInt(e.time)), BigInt(events[0]!.time) - 1n, 4_102_444_800_000_000_001n];
    for (const t of times) {
      const at = { timeNs: t };
      const folded = stateAsOf(projection, { events: recorded, at });
      const snapshot = snapshotter.snapshotBefore(at);
      const fast = stateAsOf(projection, { events: recorded.filter((r) => snapshot === null || r.globalPosition > BigInt(snapshot.position!)), at, snapshot });
      expect(fast, `at ${t}`).toEqual(folded);
      expect(violationsAt(end, at).map((v) => v.key).sort(), `at ${t}`).toEqual(Object.keys(folded.violations.open).sort());
    }
  });
});

describe('Time travel > as of a position or a time', () => {
  it('group state as of a position and as of a wall-clock time', () => {
    const { events, recorded } = s17();
    const at9 = stateAsOf(projection, { events: recorded, at: { position: 9n } });
    expect(selectGroup(at9, 'host-a', 7)).toMatchObject({ domain: { kind: 'hwpt', hwptId: 3 }, attachedDevices: [AUDIO] });
    const atTime = stateAsOf(projection, { events: recorded, at: { timeNs: BigInt(events[9]!.time) } });
    expect(selectGroup(atTime, 'host-a', 7)).toMatchObject({ domain: { kind: 'blocking' }, attachedDevices: [] });
    const before = stateAsOf(projection, { events: recorded, at: { timeNs: BigInt(events[0]!.time) - 1n } });
    expect(before.hosts).toEqual({});
  });

  it('violations open at a point come from the intervals of a later state', () => {
    // two refused accesses before BIND (issue 18: S17's own attach/detach sequence records nothing any more)
    const s = createScenario('host-a');
    const events = [
      s.topology(),
      s.open(NIC, 'q:5'),
      s.access(NIC, 'q:5', 'EINVAL'), // 3: opens access-before-bind
      s.bind(NIC, 'q:5', FA, 1), // 4: closed by the bind
      s.open(XHCI, 'q:7'),
      s.access(XHCI, 'q:7', 'EINVAL'), // 6: opens
      s.close(XHCI, 'q:7'), // 7: closed by the close
    ];
    const recorded = events.map((event, i) => ({ event, streamName: 'host-host-a', streamPosition: BigInt(i), globalPosition: BigInt(i + 1) }));
    const end = foldEvents(projection, recorded);
    expect(Object.keys(end.violations.open)).toEqual([]);
    const at = (p: bigint) => violationsAt(end, { position: p }).map((v) => `${v.ruleId}:${v.device}`);
    expect(at(2n)).toEqual([]);
    expect(at(3n)).toEqual([`access-before-bind:${NIC}`]);
    expect(at(4n)).toEqual([]);
    expect(at(6n)).toEqual([`access-before-bind:${XHCI}`]);
    expect(at(7n)).toEqual([]);
    const v = end.violations.closed[1]!;
    expect(v.opened).toMatchObject({ position: '6', seq: 6 });
    expect(v.closed).toMatchObject({ position: '7', seq: 7 });
    expect(violationsAt(end, { position: 6n }, { group: 12 })).toEqual([]);
  });

  it('snapshots are JSON-safe and restore to an equal, independent state', () => {
    const { recorded } = s17();
    const snapshotter = createSnapshotter(projection, { every: 4 });
    for (const r of recorded) snapshotter.apply(r.event, r.globalPosition);
    expect(snapshotter.snapshots.map((s) => s.position)).toEqual(['4', '8']);
    const snap = snapshotter.snapshotBefore({ position: 9n })!;
    const restored = fromSnapshot(JSON.parse(JSON.stringify(snap)));
    expect(restored).toEqual(foldEvents(projection, recorded.slice(0, 8)));
    // later folding on the live state did not change the snapshot
    expect(selectGroup(snap.state, 'host-a', 7)?.attachedDevices).toEqual([GPU, AUDIO]);
    const copy = cloneState(restored);
    projection.evolve(copy, recorded[8]!.event, 9n);
    expect(selectGroup(restored, 'host-a', 7)?.attachedDevices).toEqual([GPU, AUDIO]);
  });

  it('a snapshot of another format is a ValidationError naming the field', () => {
    expect(() => fromSnapshot({ formatVersion: 4, state: {} })).toThrow(ValidationError);
    expect(() => fromSnapshot({ formatVersion: 4 })).toThrow(/snapshot\.formatVersion/);
    expect(() => fromSnapshot({ formatVersion: 1, state: null })).toThrow(/snapshot\.state/);
    expect(() => createSnapshotter(projection, { every: 0 })).toThrow(RangeError);
  });
});

describe('Time travel > one path in production', () => {
  it('layout16 #16 (time travel once): the projections API offers the fold to a point (createFolder, foldEvents) and no second as-of fold or snapshotter; those are test helpers', async () => {
    const api = await import('./index.js');
    expect(Object.keys(api)).toEqual(expect.arrayContaining(['createFolder', 'foldEvents', 'foldEventsAsync', 'violationsAt']));
    for (const testOnly of ['stateAsOf', 'stateAsOfAsync', 'createSnapshotter', 'selectHost', 'selectGroup']) expect(Object.keys(api), testOnly).not.toContain(testOnly);
    expect(Object.keys(await import('./timeTravel.js')).sort()).toEqual(['clockStepsAcross', 'createFolder', 'foldEvents', 'foldEventsAsync', 'isAtOrBefore', 'lastClockReturn', 'violationsAt']);
  });
});

describe('Diffs > between two times and per event', () => {
  it('diffGroupState names what changed in a group between two positions', () => {
    const { recorded } = s17();
    const a = stateAsOf(projection, { events: recorded, at: { position: 5n } });
    const b = stateAsOf(projection, { events: recorded, at: { position: 9n } });
    const changes = diffGroupState(selectGroup(a, 'host-a', 7), selectGroup(b, 'host-a', 7));
    expect(changes).toEqual([
      { path: 'domain', before: { kind: 'blocking' }, after: { kind: 'hwpt', hwptId: 3, ictx: FA } },
      { path: 'attachedDevices', before: [], after: [AUDIO] },
    ]);
    expect(diffGroupState(selectGroup(a, 'host-a', 7), selectGroup(a, 'host-a', 7))).toEqual([]);
    expect(diffGroupState(undefined, selectGroup(a, 'host-a', 12)).map((c) => c.path)).toContain('members');
  });

  it('evolveWithChanges describes the state change and violations each event made', () => {
    const { recorded } = s17();
    const state = foldEvents(projection, recorded.slice(0, 8));
    const change = evolveWithChanges(projection, state, recorded[8]!.event, 9n);
    expect(change.type).toBe('VfioDeviceDetachPtIssued');
    expect(change.event).toMatchObject({ position: '9', seq: 9 });
    expect(change.groups).toEqual([{ group: 7, changes: [{ path: 'attachedDevices', before: [GPU, AUDIO], after: [AUDIO] }] }]);
    expect(change.devices.map((d) => [d.device, d.changes.map((c) => c.path)])).toEqual([[GPU, ['attachedHwpt', 'attachedPt', 'selfAttachedHwpt']]]);
    // issue 18: the owner's non-last detach is part of its own sequence: no violation opened or closed
    expect(change.violationsOpened).toEqual([]);
    const last = evolveWithChanges(projection, state, recorded[9]!.event, 10n);
    expect(last.violationsClosed).toEqual([]);
    expect(last.groups[0]!.changes.map((c) => c.path)).toEqual(['domain', 'attachedDevices']);
  });
});
