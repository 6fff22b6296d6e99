import { describe, expect, it } from 'vitest';
import { isOperationEvent } from '../../replay/historyCheck.js';
import { isObservation, toOperation, type OperationEvent } from './operations.js';
import { summarizeGroups } from '../../replay/replayer.js';
import { CORPUS } from '../../replay/testing/scenarios.js';
import { NIC, op, topology } from '../../replay/testing/fixtures.js';
import { VARIANTS } from '../../replay/variants.js';
import { evolveWithDecision } from './decider.js';
import type { ModelState } from './types.js';

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

  it('given a recorded success the variant would refuse, when evolved, then the state does not follow it', () => {
    const state = upstream.initialState(vfioNic);
    const before = summarizeGroups(state);
    // no iommufd is open in the model: it would answer -EBADF
    upstream.evolve(state, { type: 'VfioDeviceBindIommufdIssued', data: { device: NIC, deviceFd: 'n0', ictx: 'fdA', outcome: { ok: true, devId: 1 } } });
    expect(summarizeGroups(state)).toEqual(before);
  });

  it('given a topology, when the initial state is built from it, then it is the empty state evolved with that snapshot', () => {
    expect(summarizeGroups(upstream.initialState(vfioNic))).toEqual(summarizeGroups(upstream.evolve(upstream.initialState(), vfioNic)));
  });
});
