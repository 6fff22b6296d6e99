import type { Command } from 'commander';
import { ValidationError } from '../../../schemas/index.js';
import { apiClientFromOptions } from '../../client/apiClient.js';
import { EXIT } from '../exitCodes.js';
import { timeOption, type RegisterCommand } from '../program.js';

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

const domainText = (d: { kind: string; hwptId?: number; ictx?: string; container?: string } | null): string =>
  !d ? 'none' : d.kind === 'hwpt' ? `hwpt ${d.hwptId} (iommufd ${d.ictx})` : d.kind === 'container' ? `container ${d.container}` : d.kind;

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

  withCommon(query.command('group').description('a group state, now or --at a time').argument('<host>').argument('<group>'))
    .option('--at <time>', 'ISO-8601 time or ns since the epoch')
    .option('--position <n>', 'store position')
    .action((host: string, group: string, opts: Common & { at?: string; position?: string }) =>
      run(async () => {
        type G = { group: { group: number; members: string[]; userOwner: { kind: string; handle: string } | null; domain: { kind: string; hwptId?: number; ictx?: string }; kernelDmaDrivers: number; attachedDevices: string[]; uncertain: boolean }; devices: { device: string; driver: string | null; boundIctx: string | null }[]; openViolations: { ruleId: string; message: string }[] };
        const r = await apiClientFromOptions(opts).get<G>(`/v1/hosts/${encodeURIComponent(host)}/groups/${encodeURIComponent(group)}${qs({ at: timeParam('--at', opts.at), position: opts.position })}`);
        print(r, opts.json, (v: G) =>
          [
            `group ${v.group.group} on ${host}${opts.at ? ` at ${opts.at}` : ''}${v.group.uncertain ? ' (UNCERTAIN: events were lost or reordered)' : ''}`,
            `  owner:   ${v.group.userOwner ? `${v.group.userOwner.kind} ${v.group.userOwner.handle}` : `kernel (${v.group.kernelDmaDrivers} DMA-API driver(s) bound)`}`,
            `  domain:  ${domainText(v.group.domain)}`,
            `  members: ${v.devices.map((d) => `${d.device} [${d.driver ?? 'no driver'}${d.boundIctx ? `, bound to ${d.boundIctx}` : ''}]`).join(', ')}`,
            ...v.openViolations.map((x) => `  VIOLATION ${x.ruleId}: ${x.message}`),
          ].join('\n'),
        );
        return EXIT.ok;
      }),
    );

  withCommon(query.command('device').description('a device state, now or --at a time').argument('<host>').argument('<device>'))
    .option('--at <time>', 'ISO-8601 time or ns since the epoch')
    .action((host: string, device: string, opts: Common & { at?: string }) =>
      run(async () => {
        const r = await apiClientFromOptions(opts).get<{ device: Record<string, unknown> }>(`/v1/hosts/${encodeURIComponent(host)}/devices/${encodeURIComponent(device)}${qs({ at: timeParam('--at', opts.at) })}`);
        print(r, opts.json, (v: typeof r) => Object.entries(v.device).map(([k, x]) => `${k}: ${JSON.stringify(x)}`).join('\n'));
        return EXIT.ok;
      }),
    );

  withCommon(query.command('timeline').description('the events that changed a group or a device').argument('<host>'))
    .option('--group <n>', 'IOMMU group')
    .option('--device <bdf>', 'device')
    .option('--from <time>')
    .option('--to <time>')
    .option('--limit <n>', 'events', '100')
    .action((host: string, opts: Common & { group?: string; device?: string; from?: string; to?: string; limit: string }) =>
      run(async () => {
        if (!opts.group === !opts.device) throw new ValidationError('--group or --device: give exactly one');
        const subject = opts.group ? `groups/${encodeURIComponent(opts.group)}` : `devices/${encodeURIComponent(opts.device!)}`;
        type T = { items: { event: { seq: number; time: string; type: string; actor?: { comm?: string; pid?: number; vm?: string } }; change: { groups: { group: number; changes: { path: string; before: unknown; after: unknown }[] }[] } }[] };
        const r = await apiClientFromOptions(opts).get<T>(`/v1/hosts/${encodeURIComponent(host)}/${subject}/timeline${qs({ from: timeParam('--from', opts.from), to: timeParam('--to', opts.to), limit: opts.limit })}`);
        print(r, opts.json, (v: T) =>
          v.items
            .map((i) => {
              const when = new Date(Number(BigInt(i.event.time) / 1_000_000n)).toISOString();
              const who = i.event.actor ? ` by ${i.event.actor.comm ?? ''}${i.event.actor.pid !== undefined ? `[${i.event.actor.pid}]` : ''}${i.event.actor.vm ? ` vm=${i.event.actor.vm}` : ''}` : '';
              const changes = i.change.groups.flatMap((g) => g.changes.filter((c) => c.path === 'userOwner' || c.path === 'domain').map((c) => `${c.path}: ${JSON.stringify(c.before)} → ${JSON.stringify(c.after)}`));
              return `${when} #${i.event.seq} ${i.event.type}${who}${changes.length ? `\n    ${changes.join('\n    ')}` : ''}`;
            })
            .join('\n'),
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
        type V = { total: number; items: { ruleId: string; severity: string; host: string; group?: number; message: string; opened: { timeNs: string }; closed?: { timeNs: string } }[] };
        const r = await apiClientFromOptions(opts).get<V>(`/v1/violations${qs({ host: opts.host, rule: opts.rule, severity: opts.severity, status: opts.status, at: timeParam('--at', opts.at), limit: opts.limit })}`);
        const iso = (ns: string) => new Date(Number(BigInt(ns) / 1_000_000n)).toISOString();
        print(r, opts.json, (v: V) =>
          [`${v.total} violation(s)`, ...v.items.map((x) => `${x.severity.toUpperCase()}\t${x.host}${x.group !== undefined ? ` g${x.group}` : ''}\t${x.ruleId}\t${iso(x.opened.timeNs)} → ${x.closed ? iso(x.closed.timeNs) : 'open'}\t${x.message}`)].join('\n'),
        );
        return r.items.some((x) => !x.closed) ? EXIT.finding : EXIT.ok;
      }),
    );

  withCommon(query.command('diff').description('what changed in a group between two times').argument('<host>').argument('<group>'))
    .requiredOption('--from <time>')
    .option('--to <time>', 'default: now')
    .action((host: string, group: string, opts: Common & { from: string; to?: string }) =>
      run(async () => {
        type D = { changes: { path: string; before: unknown; after: unknown }[] };
        const r = await apiClientFromOptions(opts).get<D>(`/v1/hosts/${encodeURIComponent(host)}/groups/${encodeURIComponent(group)}/diff${qs({ from: timeParam('--from', opts.from), to: timeParam('--to', opts.to) })}`);
        print(r, opts.json, (v: D) => (v.changes.length === 0 ? 'no change' : v.changes.map((c) => `${c.path}: ${JSON.stringify(c.before)} → ${JSON.stringify(c.after)}`).join('\n')));
        return EXIT.ok;
      }),
    );
};
