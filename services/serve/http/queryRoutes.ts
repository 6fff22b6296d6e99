import { Router } from 'express';
import { z } from 'zod';
import {
  RULES,
  deviceObjectsOf,
  diffGroupState,
  evolveWithChanges,
  objectsOf,
  violationsAt,
  type AsOf,
  type DeviceState,
  type EventChange,
  type FleetState,
  type GroupState,
  type HostState,
  type UserOwner,
  type Violation,
} from '../../../projections/index.js';
import { NotFoundError, ValidationError, hostStreamName, type RecordedEvent } from '../../../schemas/index.js';
import type { EventStore } from '../../shared/eventStore/eventStore.js';
import type { LiveProjection } from '../query/liveProjection.js';
import { AsOfQuery, CursorParam, DeviceParam, type EventIdentity, GroupParam, HostParam, LimitParam, PositionParam, TimeNsParam, encodeCursor, eventIdentity, parseParams, toAsOf } from './params.js';
import { formatTimeNs } from '../../shared/time.js';
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
    // the resolved time, echoed in the one format (UTC), beside the ns
    return { asOfTimeNs: at.timeNs.toString(), asOfTime: formatTimeNs(at.timeNs), ...(steps.length > 0 ? { clockNotMonotonic: steps } : {}) };
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
      const devices = g.members.map((d) => state.devices[d]).filter((d): d is DeviceState => d !== undefined);
      res.json({ ...asOfLabel(host, at), group: g, owner: g.userOwner ? await ownerOf(host, g.userOwner, devices, at) : null, devices, openViolations: violations });
    }),
  );

  /**
   * Who holds a group's user ownership: the process behind the newest event that used the owner's handle (the
   * bind or claim, an open of the iommufd or container), read backwards from the as-of point, with the VM and
   * tenant of the devices it holds. A bounded scan: an owner used only further back is named without a process.
   */
  const ownerOf = async (host: string, owner: UserOwner, devices: readonly DeviceState[], at: AsOf | undefined): Promise<OwnerAnswer> => {
    // the devices bound to the owner first: another member may serve someone else (tenant mixing)
    const held = [...devices.filter((d) => d.boundIctx === owner.handle), ...devices.filter((d) => d.boundIctx !== owner.handle)];
    const answer: OwnerAnswer = { ...owner, vm: held.find((d) => d.vm !== null)?.vm ?? null, tenant: held.find((d) => d.tenant !== null)?.tenant ?? null, pid: null, comm: null, event: null };
    let scanned = 0;
    for await (const r of store.readStream(hostStreamName(host), { direction: 'backwards', fromRevision: 'end' })) {
      if (++scanned > OWNER_SCAN_LIMIT) break;
      if (at !== undefined && ('position' in at ? r.globalPosition > at.position : BigInt(r.event.time) > at.timeNs)) continue;
      const data = r.event.data as { ictx?: unknown; container?: unknown };
      const actor = r.event.actor;
      if (!actor || (data.ictx !== owner.handle && data.container !== owner.handle)) continue;
      return { ...answer, vm: actor.vm ?? answer.vm, tenant: actor.tenant ?? answer.tenant, pid: actor.pid ?? null, comm: actor.comm ?? null, event: eventIdentity(r) };
    }
    return answer;
  };

  router.get(
    '/v1/hosts/:host/devices/:device',
    handle(async (req, res) => {
      const host = parseParams(HostParam, req.params.host, 'path');
      const device = parseParams(DeviceParam, req.params.device, 'path');
      const { host: state, at } = await hostStateFor(host, toAsOf(parseParams(AsOfQuery, req.query, 'query')));
      const d = state.devices[device];
      if (!d) throw new NotFoundError(`host ${host}: no device ${device}`);
      res.json({ ...asOfLabel(host, at), device: d, objects: deviceObjectsOf(state, device) });
    }),
  );

  // the iommufd objects after 6.6 (issue 19): vIOMMUs, vDEVICEs, nested hwpts, fault queues, vEVENTQs, HW queues,
  // reset fences and cache tags, with their owners and links, now or as of ?at= / ?position=
  router.get(
    '/v1/hosts/:host/objects',
    handle(async (req, res) => {
      const host = parseParams(HostParam, req.params.host, 'path');
      const { host: state, at } = await hostStateFor(host, toAsOf(parseParams(AsOfQuery, req.query, 'query')));
      res.json({ ...asOfLabel(host, at), objects: objectsOf(state) });
    }),
  );

  /**
   * The events that changed a group or a device, each with the change it made, after the state `start` and up to
   * `to` (a time: where the state at `to` ends, see AsOf; or a position). Folds the host's stream from the
   * snapshot before `start`, so the changes are exact even when the event did not name the subject (a sibling's
   * attach moves the whole group).
   */
  const changesOf = async (
    host: string,
    subject: 'group' | 'device',
    key: number | string,
    range: { start: AsOf; to: AsOf | undefined; limit: number; afterRevision: bigint },
  ): Promise<{ items: ReturnType<typeof timelineItem>[]; nextCursor: string | null }> => {
    let state = await live.hostStateAt(host, range.start);
    const startRevision = BigInt(state.hosts[host]?.eventCount ?? 0);
    const to = range.to;
    // `to` ends the timeline where the state at `to` ends (AsOf): an event dated after it ends the read only
    // past the host's last clock step back to `to` or before (not known, the steps' bound dropped it: at the
    // first event dated after `to`, as before: never an item from after `to`)
    const lastReturn = to === undefined || !('timeNs' in to) ? undefined : live.lastClockReturnPosition(host, to.timeNs);
    const items: ReturnType<typeof timelineItem>[] = [];
    let nextCursor: string | null = null;
    for await (const r of yieldingEach(store.readStream(hostStreamName(host), { fromRevision: startRevision }))) {
      if (to !== undefined && 'position' in to && r.globalPosition > to.position) break;
      // an event dated after `to` but recorded before the clock came back to `to` is part of the history up to it
      if (to !== undefined && 'timeNs' in to && BigInt(r.event.time) > to.timeNs && (lastReturn === undefined || r.globalPosition > lastReturn)) break;
      if (r.streamPosition <= range.afterRevision) {
        state = live.projection.evolve(state, r.event, r.globalPosition);
        continue;
      }
      const change = evolveWithChanges(live.projection, state, r.event, r.globalPosition);
      const touches =
        subject === 'group'
          ? change.groups.some((g) => g.group === key) || [...change.violationsOpened, ...change.violationsClosed].some((v) => v.group === key)
          : change.devices.some((d) => d.device === key) || [...change.violationsOpened, ...change.violationsClosed].some((v) => v.device === key);
      if (!touches) continue;
      if (items.length === range.limit) {
        nextCursor = encodeCursor((r.streamPosition - 1n).toString());
        break;
      }
      items.push(timelineItem(r, change));
    }
    return { items, nextCursor };
  };

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
      const from = q.from ?? 0n;
      const { items, nextCursor } = await changesOf(host, subject, key, {
        start: { timeNs: from === 0n ? 0n : from - 1n },
        to: q.to === undefined ? undefined : { timeNs: q.to },
        limit: q.limit,
        afterRevision: typeof q.cursor === 'string' ? BigInt(q.cursor) : -1n,
      });
      res.json({ host, [subject]: key, ...(q.from !== undefined ? { from: timeLabel(q.from) } : {}), ...(q.to !== undefined ? { to: timeLabel(q.to) } : {}), items, nextCursor });
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
      // the events between the two points that changed the group: what caused the difference
      const causes = await changesOf(host, 'group', group, { start: fromAt, to: toAt, limit: DIFF_CAUSES_LIMIT, afterRevision: -1n });
      res.json({
        host,
        group,
        from: asOfLabel(host, fromAt),
        to: asOfLabel(host, toAt),
        before: before ?? null,
        after: after ?? null,
        changes: diffGroupState(before as GroupState | undefined, after as GroupState | undefined),
        causes: causes.items,
        causesTruncated: causes.nextCursor !== null,
      });
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

// how far back the owner's process is looked for (events of the host, newest first)
const OWNER_SCAN_LIMIT = 20_000;

/** the owner of a group in words: the handle, and the process, VM and tenant behind it when recorded */
interface OwnerAnswer extends UserOwner {
  readonly vm: string | null;
  readonly tenant: string | null;
  readonly pid: number | null;
  readonly comm: string | null;
  /** the event that names the process (its bind, claim or open) */
  readonly event: EventIdentity | null;
}

// the events listed as the causes of a diff
const DIFF_CAUSES_LIMIT = 200;

const timeLabel = (ns: bigint) => ({ timeNs: ns.toString(), time: formatTimeNs(ns) });

const timelineItem = (r: RecordedEvent, change: EventChange) => ({
  /** the event named one way everywhere (host#seq, position, UTC time) */
  ref: eventIdentity(r),
  position: r.globalPosition.toString(),
  revision: r.streamPosition.toString(),
  event: r.event,
  change,
});
