import type { Command } from 'commander';
import { ValidationError } from '../../../schemas/index.js';
import { apiClientFromOptions } from '../../shared/client/apiClient.js';
import { EXIT } from '../exitCodes.js';
import { eventLabel } from '../../serve/http/params.js';
import { TIME_FORMS, formatTimeNs } from '../../shared/time.js';
import { timeOption, type RegisterCommand } from '../program.js';
import { actorText, changesInWords, domainText, isoOfNs, itemInWords, type Actor, type ChangeItem, type FieldChange } from './queryText.js';

interface Common {
  url?: string;
  token?: string;
  json?: boolean;
}

const timeParam = (flag: string, raw: string | undefined): string | undefined => timeOption(flag, raw)?.toString();

const qs = (params: Record<string, string | undefined>): string => {
  const entries = Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined);
  return entries.length === 0 ? '' : `?${new URLSearchParams(entries).toString()}`;
};

const print = (value: unknown, json: boolean | undefined, human: (v: never) => string): void => {
  console.log(json ? JSON.stringify(value, null, 2) : human(value as never));
};

const withCommon = (cmd: Command): Command =>
  cmd
    .option('--url <url>', 'the service (also IOMMUTRAIL_URL; default http://127.0.0.1:8377)')
    .option('--token <token>', 'a token with the read role (also IOMMUTRAIL_TOKEN)')
    .option('--json', 'print the API answer as JSON');

/** what every as-of answer carries: the resolved time (echoed in UTC), or a position, or now */
interface AsOfAnswer {
  asOf?: 'now';
  asOfTime?: string;
  asOfPosition?: string;
  clockNotMonotonic?: unknown[];
}

const asOfText = (a: AsOfAnswer): string =>
  a.asOfTime !== undefined
    ? `at ${a.asOfTime} (UTC)${a.clockNotMonotonic?.length ? ' (the host clock went back across this time: see --json clockNotMonotonic)' : ''}`
    : a.asOfPosition !== undefined
      ? `as of store position ${a.asOfPosition}`
      : 'now';

/** `iommutrail query ...`: forensic questions to a running service, answered for a person or as JSON */
export const registerQuery: RegisterCommand = (program, run) => {
  const query = program.command('query').description('forensic queries against a running service');

  withCommon(query.command('hosts').description('hosts tracked')).action((opts: Common) =>
    run(async () => {
      const r = await apiClientFromOptions(opts).get<{ items: { host: string; events: number; groups: number; openViolations: number; uncertain: unknown }[] }>('/v1/hosts?limit=10000');
      print(r, opts.json, (v: typeof r) => v.items.map((h) => `${h.host}\t${h.events} events\t${h.groups} groups\t${h.openViolations} open violations${h.uncertain ? '\tUNCERTAIN' : ''}`).join('\n'));
      return EXIT.ok;
    }),
  );

  withCommon(query.command('group').description('a group state and who owns it, now or --at a time').argument('<host>').argument('<group>'))
    .option('--at <time>', `the time (${TIME_FORMS})`)
    .option('--position <n>', 'store position')
    .action((host: string, group: string, opts: Common & { at?: string; position?: string }) =>
      run(async () => {
        type G = AsOfAnswer & {
          group: { group: number; userOwner: { kind: string; handle: string } | null; domain: { kind: string; hwptId?: number; ictx?: string }; kernelDmaDrivers: number; uncertain: boolean };
          owner: (Actor & { kind: string; handle: string; pid: number | null; comm: string | null; vm: string | null; tenant: string | null; event: { label: string; time: string } | null }) | null;
          devices: { device: string; driver: string | null; boundIctx: string | null; vm: string | null; tenant: string | null }[];
          openViolations: { ruleId: string; severity: string; message: string; opened: { seq: number } }[];
        };
        const r = await apiClientFromOptions(opts).get<G>(`/v1/hosts/${encodeURIComponent(host)}/groups/${encodeURIComponent(group)}${qs({ at: timeParam('--at', opts.at), position: opts.position })}`);
        print(r, opts.json, (v: G) => {
          const o = v.owner;
          const who = o ? actorText({ ...(o.comm !== null ? { comm: o.comm } : {}), ...(o.pid !== null ? { pid: o.pid } : {}), ...(o.vm !== null ? { vm: o.vm } : {}), ...(o.tenant !== null ? { tenant: o.tenant } : {}) }) : '';
          return [
            `group ${v.group.group} on ${host} ${asOfText(v)}${v.group.uncertain ? ' (UNCERTAIN: events were lost or reordered)' : ''}`,
            `  owner:   ${o ? `${o.kind} ${o.handle}` : `kernel (${v.group.kernelDmaDrivers} DMA-API driver(s) bound)`}`,
            ...(o ? [`  who:     ${who || 'not recorded (no event with a process names this owner)'}${o.event ? ` (as of ${o.event.label} at ${o.event.time})` : ''}`] : []),
            `  domain:  ${domainText(v.group.domain)}`,
            `  members: ${v.devices.map((d) => `${d.device} [${[d.driver ?? 'no driver', d.boundIctx ? `bound to iommufd ${d.boundIctx}` : '', d.vm ? `VM ${d.vm}` : '', d.tenant ? `tenant ${d.tenant}` : ''].filter(Boolean).join(', ')}]`).join(', ')}`,
            ...v.openViolations.map((x) => `  VIOLATION ${x.severity.toUpperCase()} ${x.ruleId}: ${x.message}`),
          ].join('\n');
        });
        return EXIT.ok;
      }),
    );

  withCommon(query.command('device').description('a device state, now or --at a time').argument('<host>').argument('<device>'))
    .option('--at <time>', `the time (${TIME_FORMS})`)
    .action((host: string, device: string, opts: Common & { at?: string }) =>
      run(async () => {
        const r = await apiClientFromOptions(opts).get<AsOfAnswer & { device: Record<string, unknown> }>(`/v1/hosts/${encodeURIComponent(host)}/devices/${encodeURIComponent(device)}${qs({ at: timeParam('--at', opts.at) })}`);
        print(r, opts.json, (v: typeof r) => [`device ${device} on ${host} ${asOfText(v)}`, ...Object.entries(v.device).map(([k, x]) => `  ${k}: ${JSON.stringify(x)}`)].join('\n'));
        return EXIT.ok;
      }),
    );

  withCommon(query.command('timeline').description('the events that changed a group or a device, in words').argument('<host>'))
    .option('--group <n>', 'IOMMU group')
    .option('--device <bdf>', 'device')
    .option('--from <time>', `from this time (${TIME_FORMS})`)
    .option('--to <time>', 'up to this time')
    .option('--limit <n>', 'events', '100')
    .action((host: string, opts: Common & { group?: string; device?: string; from?: string; to?: string; limit: string }) =>
      run(async () => {
        if (!opts.group === !opts.device) throw new ValidationError('--group or --device: give exactly one');
        const subject = opts.group ? `groups/${encodeURIComponent(opts.group)}` : `devices/${encodeURIComponent(opts.device!)}`;
        type T = { from?: { time: string }; to?: { time: string }; items: ChangeItem[]; nextCursor: string | null };
        const r = await apiClientFromOptions(opts).get<T>(`/v1/hosts/${encodeURIComponent(host)}/${subject}/timeline${qs({ from: timeParam('--from', opts.from), to: timeParam('--to', opts.to), limit: opts.limit })}`);
        const what = opts.group ? { group: Number(opts.group) } : { device: opts.device! };
        print(r, opts.json, (v: T) =>
          [
            `${opts.group ? `group ${opts.group}` : `device ${opts.device}`} on ${host}, ${v.from ? `from ${v.from.time}` : 'from the start'} ${v.to ? `to ${v.to.time}` : 'to now'} (UTC): ${v.items.length} event(s)${v.nextCursor ? ' (more: raise --limit)' : ''}`,
            ...v.items.map((i) => itemInWords(i, what)),
          ].join('\n'),
        );
        return EXIT.ok;
      }),
    );

  withCommon(query.command('violations').description('violations, filtered'))
    .option('--host <host>')
    .option('--rule <id>')
    .option('--severity <s>', 'critical | warning | info')
    .option('--status <s>', 'open | closed | all (default all; not with --at)')
    .option('--at <time>', 'only those open at this time')
    .option('--limit <n>', 'rows', '100')
    .action((opts: Common & { host?: string; rule?: string; severity?: string; status?: string; at?: string; limit: string }) =>
      run(async () => {
        type Ref = { seq: number; timeNs: string };
        type V = { total: number; items: { ruleId: string; severity: string; host: string; group?: number; device?: string; message: string; opened: Ref; closed?: Ref }[] };
        const at = timeOption('--at', opts.at);
        const r = await apiClientFromOptions(opts).get<V>(`/v1/violations${qs({ host: opts.host, rule: opts.rule, severity: opts.severity, status: opts.status, at: at?.toString(), limit: opts.limit })}`);
        // events named one way (host#seq at a UTC time), as in timelines and diffs
        const ref = (host: string, e: Ref) => `${eventLabel(host, e.seq)} at ${isoOfNs(e.timeNs)}`;
        print(r, opts.json, (v: V) =>
          [
            `${v.total} violation(s)${at !== undefined ? ` open at ${formatTimeNs(at)} (UTC)` : ''}${v.items.length < v.total ? `, ${v.items.length} shown (raise --limit)` : ''}`,
            ...v.items.map(
              (x) =>
                `${x.severity.toUpperCase()}\t${x.host}${x.group !== undefined ? ` group ${x.group}` : ''}${x.device !== undefined ? ` ${x.device}` : ''}\t${x.ruleId}\topened by ${ref(x.host, x.opened)}, ${x.closed ? `closed by ${ref(x.host, x.closed)}` : 'OPEN'}\t${x.message}`,
            ),
          ].join('\n'),
        );
        return r.items.some((x) => !x.closed) ? EXIT.finding : EXIT.ok;
      }),
    );

  withCommon(query.command('diff').description('what changed in a group between two times, and the events that changed it').argument('<host>').argument('<group>'))
    .requiredOption('--from <time>', `from this time (${TIME_FORMS})`)
    .option('--to <time>', 'default: now')
    .action((host: string, group: string, opts: Common & { from: string; to?: string }) =>
      run(async () => {
        type D = { from: AsOfAnswer; to: AsOfAnswer; changes: FieldChange[]; causes: ChangeItem[]; causesTruncated: boolean };
        const r = await apiClientFromOptions(opts).get<D>(`/v1/hosts/${encodeURIComponent(host)}/groups/${encodeURIComponent(group)}/diff${qs({ from: timeParam('--from', opts.from), to: timeParam('--to', opts.to) })}`);
        const g = Number(group);
        print(r, opts.json, (v: D) => {
          const changed = changesInWords(`group ${g}`, v.changes);
          return [
            `group ${g} on ${host}, from ${asOfText(v.from).replace(/^(at|as of) /, '')} to ${asOfText(v.to).replace(/^(at|as of) /, '')}`,
            ...(changed.length === 0 ? ['  no change'] : ['  changed:', ...changed.map((l) => `    ${l}`)]),
            ...(v.causes.length === 0 ? [] : [`  caused by ${v.causes.length}${v.causesTruncated ? '+' : ''} event(s):`, ...v.causes.map((i) => itemInWords(i, { group: g }).replace(/^/gm, '    '))]),
          ].join('\n');
        });
        return EXIT.ok;
      }),
    );
};
