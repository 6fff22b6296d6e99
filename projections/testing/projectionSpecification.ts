import { expect } from 'vitest';
import type { IommuEvent } from '../../schemas/index.js';
import type { FleetProjection } from '../fleetProjection.js';
import type { DeviceState, FleetState, GroupState, Violation } from '../types.js';

/** how a test names a violation: rule plus the subject it concerns */
export interface ViolationMatch {
  readonly ruleId: string;
  readonly group?: number;
  readonly device?: string;
  readonly host?: string;
}

export interface ThenContext {
  readonly state: FleetState;
  /** violations opened by the `when` events (all events when there is no `when`) */
  readonly opened: readonly Violation[];
  /** violations closed by the `when` events */
  readonly closed: readonly Violation[];
}

const summary = (v: Violation | ViolationMatch) => ({
  ruleId: v.ruleId,
  ...(v.group !== undefined ? { group: v.group } : {}),
  ...(v.device !== undefined ? { device: v.device } : {}),
});
const order = (a: { ruleId: string; device?: string; group?: number }, b: typeof a) =>
  `${a.ruleId}|${a.group ?? ''}|${a.device ?? ''}`.localeCompare(`${b.ruleId}|${b.group ?? ''}|${b.device ?? ''}`);
const sameViolations = (actual: readonly Violation[], expected: readonly ViolationMatch[]) =>
  expect(actual.map(summary).sort(order)).toEqual(expected.map(summary).sort(order));

/**
 * Given/when/then for the fleet projection (style G17):
 * `spec.given(events).when(events).thenGroup(7, { domain: { kind: 'blocking' } }).thenOpened([...])`.
 * `given` builds the state, `when` is the step under test: `thenOpened`/`thenClosed` look only at
 * what the `when` events raised and closed, so "raised by the event that made it true" is checked.
 */
export const ProjectionSpecification = {
  for: (projection: FleetProjection, defaultHost = 'host-a') => ({
    /**
     * @param options.allowSequenceIssues fixtures that mean to skip or reorder seq say so; otherwise a
     * sequence violation fails the test (it is almost always a fixture that minted an event twice)
     */
    given: (given: readonly IommuEvent[], options: { allowSequenceIssues?: boolean } = {}) => {
      const run = (when: readonly IommuEvent[] | null): ThenContext => {
        let state = projection.initialState();
        const before = when === null ? new Set<string>() : null;
        for (const e of given) state = projection.evolve(state, e);
        const openBefore = new Set(Object.keys(state.violations.open));
        const closedBefore = state.violations.closed.length;
        for (const e of when ?? []) state = projection.evolve(state, e);
        const opened =
          when === null
            ? [...state.violations.closed, ...Object.values(state.violations.open)].filter((v) => !before!.has(v.key))
            : [...state.violations.closed.slice(closedBefore), ...Object.values(state.violations.open)].filter((v) => !openBefore.has(v.key));
        const closed = when === null ? state.violations.closed : state.violations.closed.slice(closedBefore);
        if (!options.allowSequenceIssues) {
          const seqIssues = [...Object.values(state.violations.open), ...state.violations.closed].filter((v) => v.ruleId.startsWith('sequence-'));
          expect(seqIssues.map((v) => v.message), 'fixture has a sequence gap or reordering').toEqual([]);
        }
        return { state, opened, closed };
      };
      const thens = <Extra extends object>(ctx: () => ThenContext, extra: Extra) => {
        const api = {
          ...extra,
          then(check: (c: ThenContext) => void) {
            check(ctx());
            return api;
          },
          thenGroup(group: number, expected: Partial<Record<keyof GroupState, unknown>>, host = defaultHost) {
            const g = ctx().state.hosts[host]?.groups[group];
            expect(g, `group ${group} on ${host}`).toBeDefined();
            expect(g).toMatchObject(expected);
            return api;
          },
          thenNoGroup(group: number, host = defaultHost) {
            expect(ctx().state.hosts[host]?.groups[group]).toBeUndefined();
            return api;
          },
          thenDevice(device: string, expected: Partial<Record<keyof DeviceState, unknown>>, host = defaultHost) {
            const d = ctx().state.hosts[host]?.devices[device];
            expect(d, `device ${device} on ${host}`).toBeDefined();
            expect(d).toMatchObject(expected);
            return api;
          },
          /** exactly these violations were opened by the `when` events */
          thenOpened(expected: readonly ViolationMatch[]) {
            sameViolations(ctx().opened, expected);
            return api;
          },
          /** exactly these violations were closed by the `when` events */
          thenClosed(expected: readonly ViolationMatch[]) {
            sameViolations(ctx().closed, expected);
            return api;
          },
          /** exactly these violations are open at the end */
          thenOpen(expected: readonly ViolationMatch[]) {
            sameViolations(Object.values(ctx().state.violations.open), expected);
            return api;
          },
          thenNoViolations() {
            expect(Object.values(ctx().state.violations.open).map(summary)).toEqual([]);
            expect(ctx().state.violations.closed.map(summary)).toEqual([]);
            return api;
          },
        };
        return api;
      };
      let memo: ThenContext | null = null;
      // assertions on the given state may come before `when`
      return thens(() => (memo ??= run(null)), {
        when: (when: readonly IommuEvent[]) => {
          let m: ThenContext | null = null;
          return thens(() => (m ??= run(when)), {});
        },
      });
    },
  }),
};
