import { Router } from 'express';
import { z } from 'zod';
import {
  RULES,
  diffGroupState,
  evolveWithChanges,
  violationsAt,
  type AsOf,
  type FleetState,
  type GroupState,
  type HostState,
  type Violation,
} from '../../projections/index.js';
import { NotFoundError, ValidationError, hostStreamName, type RecordedEvent } from '../../schemas/index.js';
import type { EventStore } from '../eventStore/eventStore.js';
import type { LiveProjection } from '../query/liveProjection.js';
import {
  AsOfQuery,
  CursorParam,
  DeviceParam,
  GroupParam,
  HostParam,
  LimitParam,
  PositionParam,
  TimeNsParam,
  encodeCursor,
  parseParams,
  toAsOf,
} from './params.js';
import { yieldingEach } from './admission.js';
import { handle } from './problem.js';

export interface QueryRouteDeps {
  readonly live: LiveProjection;
  readonly store: EventStore;
}

/** a page of a stably ordered list, with the cursor of the next page */
const page = <T>(items: readonly T[], limit: number, keyOf: (t: T) => unknown) => {
  const slice = items.slice(0, limit);
  const last = slice.at(-1);
  return { items: slice, nextCursor: items.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null };
};

const compareKeys = (a: string | number, b: string | number): number => (a < b ? -1 : a > b ? 1 : 0);

export const createQueryRouter = (deps: QueryRouteDeps): Router => {
  const { live, store } = deps;
  const router = Router();

  /** the host state now, or as of ?at= / ?position= */
  const hostStateFor = async (host: string, at: AsOf | undefined): Promise<{ fleet: FleetState; host: HostState; at: AsOf | undefined }> => {
    const fleet = at ? await live.hostStateAt(host, at) : live.hostFleetState(host);
    const state = fleet?.hosts[host];
    if (!fleet || !state) throw new NotFoundError(`host ${host}: no events recorded${at ? ' at or before that point' : ''}`);
    return { fleet, host: state, at };
  };

  // an answer as of a time names the events whose clock went back across it: that answer depends on a clock jump
  const asOfLabel = (host: string, at: AsOf | undefined) => {
    if (at === undefined) return { asOf: 'now' };
    if ('position' in at) return { asOfPosition: at.position.toString() };
    const steps = live.clockNotMonotonicAt(host, at);
    return { asOfTimeNs: at.timeNs.toString(), ...(steps.length > 0 ? { clockNotMonotonic: steps } : {}) };
  };

  router.get(
    '/v1/hosts',
    handle((req, res) => {
      const q = parseParams(z.strictObject({ limit: LimitParam, cursor: CursorParam.optional() }), req.query, 'query');
      const after = typeof q.cursor === 'string' ? q.cursor : '';
      const rows = live
        .hostNames()
        .filter((h) => h > after)
        .map((name) => {
          const h = live.host(name)!;
          const fleet = live.hostFleetState(name)!;
          return {
            host: name,
            lastSeq: h.lastSeq,
            lastTimeNs: h.lastTimeNs,
            events: h.eventCount,
            groups: Object.keys(h.groups).length,
            devices: Object.keys(h.devices).length,
            openViolations: Object.keys(fleet.violations.open).length,
            uncertain: h.uncertain,
          };
        });
      res.json(page(rows, q.limit, (r) => r.host));
    }),
  );

  router.get(
    '/v1/hosts/:host/state',
    handle(async (req, res) => {
      const host = parseParams(HostParam, req.params.host, 'path');
      const { host: state, at } = await hostStateFor(host, toAsOf(parseParams(AsOfQuery, req.query, 'query')));
      // the reorder buffer can hold thousands of whole events: the answer names them (seq, id), not their bodies
      const { held, ...rest } = state;
      res.json({ ...asOfLabel(host, at), state: { ...rest, held: held.map((h) => ({ seq: h.event.seq, id: h.event.id, position: h.position })) } });
    }),
  );

  const listOf = (kind: 'groups' | 'devices') =>
    handle(async (req, res) => {
      const host = parseParams(HostParam, req.params.host, 'path');
      const q = parseParams(AsOfQuery.extend({ limit: LimitParam, cursor: CursorParam.optional() }), req.query, 'query');
      const { host: state, at } = await hostStateFor(host, toAsOf(q));
      if (kind === 'groups') {
        const after = typeof q.cursor === 'number' ? q.cursor : -1;
        const groups = Object.values(state.groups)
          .filter((g) => g.group > after)
          .sort((a, b) => a.group - b.group);
        res.json({ ...asOfLabel(host, at), ...page(groups, q.limit, (g) => g.group) });
      } else {
        const after = typeof q.cursor === 'string' ? q.cursor : '';
        const devices = Object.values(state.devices)
          .filter((d) => d.device > after)
          .sort((a, b) => compareKeys(a.device, b.device));
        res.json({ ...asOfLabel(host, at), ...page(devices, q.limit, (d) => d.device) });
      }
    });
  router.get('/v1/hosts/:host/groups', listOf('groups'));
  router.get('/v1/hosts/:host/devices', listOf('devices'));

  router.get(
    '/v1/hosts/:host/groups/:group',
    handle(async (req, res) => {
      const host = parseParams(HostParam, req.params.host, 'path');
      const group = parseParams(GroupParam, req.params.group, 'path');
      const { fleet, host: state, at } = await hostStateFor(host, toAsOf(parseParams(AsOfQuery, req.query, 'query')));
      const g = state.groups[group];
      if (!g) throw new NotFoundError(`host ${host}: no IOMMU group ${group}`);
      const violations = at ? violationsAt(fleet, at, { host, group }) : Object.values(fleet.violations.open).filter((v) => v.group === group);
      res.json({ ...asOfLabel(host, at), group: g, devices: g.members.map((d) => state.devices[d]).filter(Boolean), openViolations: violations });
    }),
  );

  router.get(
    '/v1/hosts/:host/devices/:device',
    handle(async (req, res) => {
      const host = parseParams(HostParam, req.params.host, 'path');
      const device = parseParams(DeviceParam, req.params.device, 'path');
      const { host: state, at } = await hostStateFor(host, toAsOf(parseParams(AsOfQuery, req.query, 'query')));
      const d = state.devices[device];
      if (!d) throw new NotFoundError(`host ${host}: no device ${device}`);
      res.json({ ...asOfLabel(host, at), device: d });
    }),
  );

  /**
   * The events that changed a group or a device, each with the change it made. Folds the host's stream from
   * the snapshot before `from`, so the changes are exact even when the event did not name the subject
   * (a sibling's attach moves the whole group).
   */
  const timeline = (subject: 'group' | 'device') =>
    handle(async (req, res) => {
      const host = parseParams(HostParam, req.params.host, 'path');
      const key = subject === 'group' ? parseParams(GroupParam, req.params.group, 'path') : parseParams(DeviceParam, req.params.device, 'path');
      const q = parseParams(
        z.strictObject({ from: TimeNsParam.optional(), to: TimeNsParam.optional(), limit: LimitParam, cursor: CursorParam.optional() }),
        req.query,
        'query',
      );
      if (q.cursor !== undefined && !(typeof q.cursor === 'string' && /^-?\d{1,19}$/.test(q.cursor))) {
        throw new ValidationError('query.cursor: not a cursor returned by this timeline', [{ path: 'query.cursor', message: 'not a cursor returned by this timeline' }]);
      }
      const afterRevision = typeof q.cursor === 'string' ? BigInt(q.cursor) : -1n;
      const from = q.from ?? 0n;
      let state = await live.hostStateAt(host, { timeNs: from === 0n ? 0n : from - 1n });
      const startRevision = BigInt(state.hosts[host]?.eventCount ?? 0);
      // `to` ends the timeline where the state at `to` ends (AsOf): an event dated after it ends the read only
      // past the host's last clock step back to `to` or before (not known, the steps' bound dropped it: at the
      // first event dated after `to`, as before: never an item from after `to`)
      const lastReturn = q.to === undefined ? undefined : live.lastClockReturnPosition(host, q.to);
      const items: unknown[] = [];
      let nextCursor: string | null = null;
      for await (const r of yieldingEach(store.readStream(hostStreamName(host), { fromRevision: startRevision }))) {
        // an event dated after `to` but recorded before the clock came back to `to` is part of the history up to it
        if (q.to !== undefined && BigInt(r.event.time) > q.to && (lastReturn === undefined || r.globalPosition > lastReturn)) break;
        if (r.streamPosition <= afterRevision) {
          state = live.projection.evolve(state, r.event, r.globalPosition);
          continue;
        }
        const change = evolveWithChanges(live.projection, state, r.event, r.globalPosition);
        const touches =
          subject === 'group'
            ? change.groups.some((g) => g.group === key) || [...change.violationsOpened, ...change.violationsClosed].some((v) => v.group === key)
            : change.devices.some((d) => d.device === key) || [...change.violationsOpened, ...change.violationsClosed].some((v) => v.device === key);
        if (!touches) continue;
        if (items.length === q.limit) {
          nextCursor = encodeCursor((r.streamPosition - 1n).toString());
          break;
        }
        items.push(timelineItem(r, change));
      }
      res.json({ host, [subject]: key, items, nextCursor });
    });
  router.get('/v1/hosts/:host/groups/:group/timeline', timeline('group'));
  router.get('/v1/hosts/:host/devices/:device/timeline', timeline('device'));

  router.get(
    '/v1/hosts/:host/groups/:group/diff',
    handle(async (req, res) => {
      const host = parseParams(HostParam, req.params.host, 'path');
      const group = parseParams(GroupParam, req.params.group, 'path');
      const q = parseParams(
        z.strictObject({ from: TimeNsParam.optional(), to: TimeNsParam.optional(), fromPosition: PositionParam.optional(), toPosition: PositionParam.optional() }),
        req.query,
        'query',
      );
      const fromAt = toAsOf({ at: q.from, position: q.fromPosition });
      if (!fromAt) throw new ValidationError('query.from: required (a time, or fromPosition)', [{ path: 'query.from', message: 'required (a time, or fromPosition)' }]);
      const toAt = toAsOf({ at: q.to, position: q.toPosition });
      const before = (await live.hostStateAt(host, fromAt)).hosts[host]?.groups[group];
      const after = toAt ? (await live.hostStateAt(host, toAt)).hosts[host]?.groups[group] : live.host(host)?.groups[group];
      if (!before && !after) throw new NotFoundError(`host ${host}: no IOMMU group ${group} at either point`);
      res.json({ host, group, from: asOfLabel(host, fromAt), to: asOfLabel(host, toAt), before: before ?? null, after: after ?? null, changes: diffGroupState(before as GroupState | undefined, after as GroupState | undefined) });
    }),
  );

  const SEVERITIES = ['critical', 'warning', 'info'] as const;
  router.get(
    '/v1/violations',
    handle(async (req, res) => {
      const q = parseParams(
        z.strictObject({
          host: HostParam.optional(),
          rule: z.string().optional(),
          severity: z.enum(SEVERITIES).optional(),
          status: z.enum(['open', 'closed', 'all']).optional(),
          from: TimeNsParam.optional(),
          to: TimeNsParam.optional(),
          at: TimeNsParam.optional(),
          limit: LimitParam,
          cursor: CursorParam.optional(),
        }),
        req.query,
        'query',
      );
      if (q.at !== undefined && q.status !== undefined) {
        throw new ValidationError('query.status: not with at (at lists the violations open at that time)', [{ path: 'query.status', message: 'not with at: at lists the violations open at that time' }]);
      }
      const status = q.status ?? 'all';
      if (q.rule !== undefined && !(q.rule in RULES)) {
        throw new ValidationError(`query.rule: unknown rule ${JSON.stringify(q.rule)}; see /v1/rules`, [{ path: 'query.rule', message: 'unknown rule' }]);
      }
      const all: Violation[] = [];
      const states: Iterable<[string, FleetState]> = q.host ? (live.hostFleetState(q.host) ? [[q.host, live.hostFleetState(q.host)!]] : []) : live.hostEntries();
      for (const [host, fleet] of states) {
        if (q.at !== undefined) {
          // the live state keeps a bounded list of closed violations; if any were dropped and `at` lies before
          // the oldest kept one closed, the host is folded up to `at` from its snapshot instead
          const oldestKept = fleet.violations.closed[0]?.closed;
          const liveIsExact = fleet.violations.closedDropped === 0 || (oldestKept !== undefined && BigInt(oldestKept.timeNs) <= q.at);
          const source = liveIsExact ? fleet : await live.hostStateAt(host, { timeNs: q.at });
          all.push(...violationsAt(source, { timeNs: q.at }));
          continue;
        }
        if (status !== 'closed') all.push(...Object.values(fleet.violations.open));
        if (status !== 'open') all.push(...fleet.violations.closed);
      }
      const fromNs = q.from;
      const toNs = q.to;
      const rows = all
        .filter((v) => (q.rule === undefined || v.ruleId === q.rule) && (q.severity === undefined || v.severity === q.severity))
        // the violation's open interval must meet [from, to]
        .filter((v) => (toNs === undefined || BigInt(v.opened.timeNs) <= toNs) && (fromNs === undefined || v.closed === undefined || BigInt(v.closed.timeNs) >= fromNs))
        .sort((a, b) => compareKeys(a.opened.timeNs.padStart(20, '0'), b.opened.timeNs.padStart(20, '0')) || compareKeys(a.key, b.key));
      const after = Array.isArray(q.cursor) ? (q.cursor as [string, string]) : null;
      const rest = after ? rows.filter((v) => compareKeys(v.opened.timeNs.padStart(20, '0'), after[0]) > 0 || (v.opened.timeNs.padStart(20, '0') === after[0] && v.key > after[1])) : rows;
      res.json({ total: rows.length, ...page(rest, q.limit, (v) => [v.opened.timeNs.padStart(20, '0'), v.key]) });
    }),
  );

  router.get('/v1/rules', (_req, res) => {
    res.json({ rules: Object.values(RULES) });
  });

  router.get(
    '/v1/hosts/:host/sequence',
    handle((req, res) => {
      const host = parseParams(HostParam, req.params.host, 'path');
      const report = live.sequenceReport(host);
      if (!report) throw new NotFoundError(`host ${host}: no events recorded`);
      res.json(report);
    }),
  );

  return router;
};

const timelineItem = (r: RecordedEvent, change: unknown) => ({
  position: r.globalPosition.toString(),
  revision: r.streamPosition.toString(),
  event: r.event,
  change,
});
