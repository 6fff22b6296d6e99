import { describe, expect, it } from 'vitest';
import type { IommuEvent } from '../../schemas/index.js';
import { generateHistory } from '../testing/generateHistory.js';
import { isOperationEvent } from '../../replay/historyCheck.js';
import { isObservation, toOperation, type OperationEvent } from './operations.js';
import { CORPUS } from '../../replay/testing/scenarios.js';
import { VARIANTS } from '../../replay/variants.js';
import { evolveWithDecision } from './decider.js';
import { fromKernelStateJson, toKernelStateJson } from './stateJson.js';
import { NO_PASIDS } from './fdIndex.js';
import { DEFAULT_DOMAIN, NO_ATTACHED, NO_OWNERS } from './kernel.js';
import { emptyMap } from './sharedEmptyMap.js';
import type { ModelState } from './types.js';

const upstream = VARIANTS.upstream;
const roundTrip = (s: ModelState): ModelState => fromKernelStateJson(JSON.parse(JSON.stringify(toKernelStateJson(s))));
const textOf = (s: ModelState): string => JSON.stringify(toKernelStateJson(s));

/** what each of `events` decides on its host from `states` on, folding the decision (the replay's loop) */
const decideAll = (events: readonly IommuEvent[], states: Map<string, ModelState>): string[] => {
  const out: string[] = [];
  for (const e of events) {
    let s = states.get(e.host);
    if (!s) states.set(e.host, (s = upstream.initialState()));
    if (isObservation(e)) upstream.evolve(s, e);
    else if (isOperationEvent(e)) {
      const decision = upstream.decide(toOperation(e as OperationEvent, (_ictx, id) => id, () => undefined), s);
      out.push(`${e.host}#${e.seq} ${decision.rule} ${JSON.stringify(decision.outcome)}`);
      evolveWithDecision(upstream, s, decision);
    }
  }
  return out;
};

describe('a model state as JSON (stateJson.ts)', () => {
  it('given the corpus end states (IOVA areas, a legacy container), when written as JSON, then the text has no Map, bigint or undefined and reads back to the same text', () => {
    const history = CORPUS.flatMap((c) => c.events);
    const states = new Map<string, ModelState>();
    decideAll(history, states);
    for (const s of states.values()) {
      const text = textOf(s);
      expect(() => JSON.parse(text)).not.toThrow();
      expect(textOf(roundTrip(s))).toBe(text);
    }
  });

  it('given every corpus history cut at every event, when the state there is written as JSON, read back and the rest decided on it, then every decision is the one the unbroken fold makes', () => {
    for (const scenario of CORPUS) {
      const whole = decideAll(scenario.events, new Map());
      for (let cut = 0; cut <= scenario.events.length; cut++) {
        const states = new Map<string, ModelState>();
        const before = decideAll(scenario.events.slice(0, cut), states);
        for (const [host, s] of states) states.set(host, roundTrip(s));
        expect([...before, ...decideAll(scenario.events.slice(cut), states)], `${scenario.name} cut at ${cut}`).toEqual(whole);
      }
    }
  });

  it('given a generated fleet history, when its states are written and read back every 997 events, then the decisions and the final states are the unbroken fold\'s', () => {
    const events = generateHistory({ events: 20_000, hosts: 4, finishCycles: true });
    const straight = new Map<string, ModelState>();
    const whole = decideAll(events, straight);
    const restored = new Map<string, ModelState>();
    const decided: string[] = [];
    for (let i = 0; i < events.length; i += 997) {
      decided.push(...decideAll(events.slice(i, i + 997), restored));
      for (const [host, s] of restored) restored.set(host, roundTrip(s));
    }
    expect(decided).toEqual(whole);
    for (const [host, s] of straight) expect(textOf(restored.get(host)!), host).toBe(textOf(s));
  });

  it('issue 16 merge: given a state written before fds held access_granted, when read back, then a group-path fd and a bound cdev fd have access, an unbound cdev fd has none', () => {
    const s = upstream.initialState();
    const fd = (handle: string, via: 'cdev' | 'group', ictx: string | null) => ({ handle, device: '0000:01:00.0', via, ictx, devId: ictx === null ? null : 1, hwpt: null });
    const json = JSON.parse(JSON.stringify(toKernelStateJson(s)));
    json.fds = [fd('g1', 'group', null), fd('c1', 'cdev', 'ictx1'), fd('c2', 'cdev', null)];
    const read = fromKernelStateJson(json);
    expect([...read.fds.values()].map((f) => [f.handle, f.accessGranted])).toEqual([
      ['g1', true],
      ['c1', true],
      ['c2', false],
    ]);
  });

  it('given the corpus end states read back from JSON, then empty PASIDs, group lists and Maps and default domains are the shared frozen ones a fold holds (issue 23)', () => {
    const states = new Map<string, ModelState>();
    decideAll(CORPUS.flatMap((c) => c.events), states);
    let defaults = 0;
    for (const s of states.values()) {
      const back = roundTrip(s);
      for (const g of back.groups.values()) {
        if (Object.keys(g.pasids).length === 0) expect(g.pasids).toBe(NO_PASIDS);
        if (g.attached.length === 0) expect(g.attached).toBe(NO_ATTACHED);
        if (g.extraOwners.length === 0) expect(g.extraOwners).toBe(NO_OWNERS);
      }
      for (const d of back.devices.values()) {
        if (d.domain.kind !== 'default') continue;
        expect(d.domain).toBe(DEFAULT_DOMAIN);
        defaults += 1;
      }
      for (const m of [back.fds, back.ictxs, back.groupFds, back.containers, back.fdIndex.byDevice, back.fdIndex.byHwpt]) if (m.size === 0) expect(m).toBe(emptyMap());
    }
    expect(defaults).toBeGreaterThan(0);
  });
});
