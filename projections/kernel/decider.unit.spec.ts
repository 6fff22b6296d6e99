import { describe, expect, it } from 'vitest';
import { isOperationEvent } from '../../replay/historyCheck.js';
import { isObservation, toOperation, toRecordedEvents, type OperationEvent } from './operations.js';
import { summarizeGroups } from '../../replay/replayer.js';
import { CORPUS } from '../../replay/testing/scenarios.js';
import { AUDIO, GPU, NIC, op, topology } from '../../replay/testing/fixtures.js';
import { VARIANTS } from '../../replay/variants.js';
import { evolveWithDecision } from './decider.js';
import { NO_CHANGES } from './mutate.js';
import type { ModelOutcome, ModelState, Operation } from './types.js';

const upstream = VARIANTS.upstream;
const vfioNic = topology({ drivers: { [NIC]: 'vfio-pci' } });

describe('a variant decider (decider.ts)', () => {
  it('given a call, when decided, then it returns the catalogue event with the outcome, and evolving with that event is the transition', () => {
    const state = upstream.initialState(vfioNic);
    evolveWithDecision(upstream, state, upstream.decide(op.openIommufd(), state));
    evolveWithDecision(upstream, state, upstream.decide(op.open(NIC, 'n0'), state));
    const decision = upstream.decide(op.bind(NIC, 'n0'), state);
    expect(decision.events).toEqual([{ type: 'VfioDeviceBindIommufdIssued', data: { device: NIC, deviceFd: 'n0', ictx: 'fdA', outcome: { ok: true, devId: 1 } } }]);
    upstream.evolve(state, decision.events[0]!);
    expect(state.groups.get(12)?.owner).toEqual({ kind: 'ictx', ictx: 'fdA' });
  });

  it('layout16 #16 (transitions tell what they free): given calls that move a device and free objects, when applied, then the transition tells the moved devices and the freed objects (the replayer and simulator read no state shapes)', () => {
    const state = upstream.initialState(vfioNic);
    const step = (o: Operation) => {
      const named = { freed: [] as { ictx: string; id: number }[], moved: [] as string[] };
      const changes = { ...NO_CHANGES, freed: (ictx: string, id: number) => named.freed.push({ ictx, id }), moved: (device: string) => named.moved.push(device) };
      evolveWithDecision(upstream, state, upstream.decide(o, state), changes);
      return named;
    };
    step(op.openIommufd());
    step(op.open(NIC, 'n0'));
    expect(step(op.bind(NIC, 'n0'))).toEqual({ freed: [], moved: [NIC] });
    step(op.ioas());
    step(op.ioas());
    expect(step(op.destroy(3))).toEqual({ freed: [{ ictx: 'fdA', id: 3 }], moved: [] });
    expect(step(op.attach(NIC, 'n0', 2))).toEqual({ freed: [], moved: [NIC] });
    expect(step(op.detach(NIC, 'n0'))).toEqual({ freed: [{ ictx: 'fdA', id: 3 }], moved: [NIC] });
    expect(step(op.close(NIC, 'n0'))).toMatchObject({ moved: [NIC] });
    expect(step({ kind: 'closeIommufd', ictx: 'fdA' })).toEqual({ freed: [{ ictx: 'fdA', id: 2 }], moved: [] });
  });

  it('inplace18: given a decision whose state changed after it was decided (its fd closed), when folded, then it is evolved from its recorded event, not applied as planned on the records it read', () => {
    const state = upstream.initialState(vfioNic);
    for (const o of [op.openIommufd(), op.open(NIC, 'n0'), op.bind(NIC, 'n0'), op.ioas()]) evolveWithDecision(upstream, state, upstream.decide(o, state));
    const attach = upstream.decide(op.attach(NIC, 'n0', 2), state);
    expect(attach.outcome.ok).toBe(true);
    evolveWithDecision(upstream, state, upstream.decide(op.close(NIC, 'n0'), state));
    evolveWithDecision(upstream, state, attach);
    // the recorded attach names an fd no longer open: nothing to follow (the plan read the fd and group before the close)
    expect(state.groups.get(12)?.attached).toEqual([]);
    expect(state.devices.get(NIC)?.domain).toEqual({ kind: 'default' });
    expect([...state.ictxs.get('fdA')!.objects.values()].map((o) => o.kind)).toEqual(['ioas']);
  });

  it('given every corpus history, when its recorded events are folded with upstream evolve alone, then each host ends as the upstream replay (decide, then evolve) ends', () => {
    for (const scenario of CORPUS) {
      const folded = new Map<string, ModelState>();
      const replayed = new Map<string, ModelState>();
      for (const e of scenario.events) {
        if (!folded.has(e.host)) {
          folded.set(e.host, upstream.initialState());
          replayed.set(e.host, upstream.initialState());
        }
        const f = folded.get(e.host)!;
        const r = replayed.get(e.host)!;
        if (isObservation(e)) {
          upstream.evolve(f, e);
          upstream.evolve(r, e);
        } else if (isOperationEvent(e)) {
          // a recorded event (a copy: not the object a decision returned) takes the recompute path
          upstream.evolve(f, structuredClone(e) as OperationEvent);
          evolveWithDecision(upstream, r, upstream.decide(toOperation(e as OperationEvent, (_i, id) => id, () => undefined), r));
        }
      }
      for (const [host, f] of folded) expect(summarizeGroups(f), `${scenario.name} ${host}`).toEqual(summarizeGroups(replayed.get(host)!));
    }
  });

  it('issue 16: given a recorded bind the variant would refuse (no iommufd open: -EBADF; the fd opened before recording), when evolved, then the state follows the record', () => {
    const state = upstream.initialState(vfioNic);
    expect(upstream.decide(op.bind(NIC, 'n0'), state).outcome).toEqual({ ok: false, errno: 'EBADF' });
    upstream.evolve(state, { type: 'VfioDeviceBindIommufdIssued', data: { device: NIC, deviceFd: 'n0', ictx: 'fdA', outcome: { ok: true, devId: 1 } } });
    expect(state.groups.get(12)).toMatchObject({ owner: { kind: 'ictx', ictx: 'fdA' }, ownerCnt: 1 });
    expect(state.fds.get('n0')).toMatchObject({ device: NIC, via: 'cdev', ictx: 'fdA', devId: 1 });
    expect(state.ictxs.get('fdA')?.objects.get(1)).toEqual({ kind: 'device', device: NIC, deviceFd: 'n0' });
  });

  describe('issue 16: evolve follows what was recorded where the kernel refuses it, so the violation rules can see it', () => {
    const twoVfio = topology({ drivers: { [GPU]: 'vfio-pci', [AUDIO]: 'vfio-pci' } });
    const run = (state: ModelState, ...ops: Operation[]): void => {
      for (const o of ops) expect(evolveWithDecision(upstream, state, upstream.decide(o, state)).crashed).toBeNull();
    };
    const recorded = (o: Operation, outcome: ModelOutcome) => toRecordedEvents(o, outcome)[0]!;

    it('given group 7 owned by ctx fdA, when a bind of its other device into ctx fdB is recorded as a success (the kernel: -EPERM), then the group holds both owners, and the first one closing leaves it to the second', () => {
      const state = upstream.initialState(twoVfio);
      run(state, op.openIommufd('fdA'), op.openIommufd('fdB'), op.open(GPU, 'g0'), op.open(AUDIO, 'a0'), op.bind(GPU, 'g0', 'fdA'));
      const second = op.bind(AUDIO, 'a0', 'fdB');
      expect(upstream.decide(second, state)).toMatchObject({ outcome: { ok: false, errno: 'EPERM' }, rule: 'upstream.claim.owned' });
      upstream.evolve(state, recorded(second, { ok: true, devId: 1 }));
      expect(state.groups.get(7)).toMatchObject({ owner: { kind: 'ictx', ictx: 'fdA' }, extraOwners: [{ kind: 'ictx', ictx: 'fdB' }], ownerCnt: 2 });
      expect(state.fds.get('a0')).toMatchObject({ ictx: 'fdB', devId: 1 });
      upstream.evolve(state, recorded(op.close(GPU, 'g0'), { ok: true }));
      expect(state.groups.get(7)).toMatchObject({ owner: { kind: 'ictx', ictx: 'fdB' }, extraOwners: [], ownerCnt: 1 });
    });

    it('given NIC bound through its cdev by ctx fdA, when its group node is recorded opened and set to a legacy container (the kernel: -EBUSY, then -EPERM), then the group holds the container as a second owner', () => {
      const state = upstream.initialState(vfioNic);
      run(state, op.openIommufd(), op.open(NIC, 'n0'), op.bind(NIC, 'n0'), { kind: 'openContainer', container: 'c1' });
      const openNode: Operation = { kind: 'openGroup', group: 12, groupFd: 'g12' };
      const setContainer: Operation = { kind: 'setContainer', group: 12, groupFd: 'g12', container: 'c1', containerKind: 'legacy' };
      expect(upstream.decide(openNode, state)).toMatchObject({ outcome: { ok: false }, rule: 'upstream.group.cdev-bound' });
      upstream.evolve(state, recorded(openNode, { ok: true }));
      expect(upstream.decide(setContainer, state)).toMatchObject({ outcome: { ok: false, errno: 'EPERM' }, rule: 'upstream.group.claim-eperm' });
      upstream.evolve(state, recorded(setContainer, { ok: true }));
      expect(state.groups.get(12)).toMatchObject({
        owner: { kind: 'ictx', ictx: 'fdA' },
        extraOwners: [{ kind: 'container', container: 'c1' }],
        ownerCnt: 2,
        groupFd: 'g12',
        container: { handle: 'c1', kind: 'legacy' },
      });
    });

    it('given GPU attached through one IOAS, when an attach of its group sibling to another IOAS is recorded as a success (the kernel: -EINVAL, the group is on another hwpt), then the sibling moves alone to the recorded hwpt: a split domain', () => {
      const state = upstream.initialState(twoVfio);
      run(state, op.openIommufd(), op.open(GPU, 'g0'), op.open(AUDIO, 'a0'), op.bind(GPU, 'g0'), op.bind(AUDIO, 'a0'), op.ioas(), op.ioas(), op.attach(GPU, 'g0', 3));
      const gpuHwpt = state.fds.get('g0')!.hwpt!;
      const sibling = op.attach(AUDIO, 'a0', 4);
      expect(upstream.decide(sibling, state)).toMatchObject({ outcome: { ok: false, errno: 'EINVAL' }, rule: 'upstream.attach.group-on-other-hwpt' });
      upstream.evolve(state, recorded(sibling, { ok: true, ptId: 9 }));
      expect(state.devices.get(GPU)?.domain).toEqual({ kind: 'hwpt', ictx: 'fdA', hwpt: gpuHwpt });
      expect(state.devices.get(AUDIO)?.domain).toEqual({ kind: 'hwpt', ictx: 'fdA', hwpt: 9 });
      expect(state.ictxs.get('fdA')?.objects.get(9)).toEqual({ kind: 'hwpt', ioas: 4, auto: true });
      expect(state.groups.get(7)?.attached).toEqual([GPU, AUDIO]);
    });
  });

  it('given a topology, when the initial state is built from it, then it is the empty state evolved with that snapshot', () => {
    expect(summarizeGroups(upstream.initialState(vfioNic))).toEqual(summarizeGroups(upstream.evolve(upstream.initialState(), vfioNic)));
  });
});
