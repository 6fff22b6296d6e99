import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseEventJson, type IommuEvent } from '../../schemas/index.js';
import type { KernelImage } from './kernelImage.js';
import { GuestRecordSchema, type GuestRecord } from './guestRecords.js';
import { ORACLE_DIR, type Machine, type Scenario, type Topologies } from './topologies.js';

const run = promisify(execFile);

/** the kernel command line every boot shares; `no_timer_check`: TCG on a loaded host fails the IO-APIC timer check */
const BASE_APPEND = 'console=ttyS0 panic=-1 quiet no_timer_check trace_event=iommu:* trace_buf_size=1M';

/**
 * busybox, /init, the guest program and every scenario, built once for all boots (build-initramfs.sh); the guest
 * program is compiled against `uapiHeaders` (a release with iommufd) @defaultValue the kernel's own headers.
 * With `collectorDir` (buildGuestCollector), node, udevadm and the collector go in too (an uncompressed cpio).
 */
export const buildInitramfs = async (kernel: KernelImage, workDir: string, uapiHeaders: string = kernel.headers, collectorDir?: string): Promise<string> => {
  const out = join(workDir, collectorDir ? 'initramfs.cpio' : 'initramfs.cpio.gz');
  await run(join(ORACLE_DIR, 'build-initramfs.sh'), [kernel.dir, join(ORACLE_DIR, 'scenarios'), out, uapiHeaders, ...(collectorDir ? [collectorDir] : [])], { maxBuffer: 16 << 20 });
  return out;
};

/** what the collector process running in the guest shipped (third serial port) and logged (its stderr, on the console) */
export interface GuestCollectorResult {
  /** the host name it recorded (ITCOLLECT) */
  readonly host: string;
  /** its history: every line of the third serial port that is a catalogue event */
  readonly events: IommuEvent[];
  /** lines of that port that are no valid event (a field error, a truncated line) */
  readonly badLines: { readonly line: string; readonly error: string }[];
  /** its log lines (pino JSON), in order: collector.ready, collector.line.invalid, collector.stopped, ... */
  readonly log: Record<string, unknown>[];
  /** `collector: <what> <uptime s>` lines of /init: start, ready, stop, exit (uptime in seconds) */
  readonly marks: Record<string, number>;
  /** its exit status as /init saw it, or null when it never exited */
  readonly exitCode: number | null;
}

const readGuestCollector = (host: string, file: string, consoleText: string): GuestCollectorResult => {
  const events: IommuEvent[] = [];
  const badLines: GuestCollectorResult['badLines'] = [];
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line === '') continue;
    const r = parseEventJson(line, 'collector');
    if (r.ok) events.push(r.value);
    else badLines.push({ line, error: r.error.message });
  }
  const log: Record<string, unknown>[] = [];
  const marks: Record<string, number> = {};
  let exitCode: number | null = null;
  for (const raw of consoleText.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.startsWith('{') && line.includes('"iommutrail-collector"')) {
      try {
        log.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        log.push({ msg: 'unparsable log line', line });
      }
    }
    const m = /^collector: (start|ready|stop|exit)(?: (\d+))? ([\d.]+)/.exec(line);
    if (m) {
      marks[m[1]!] = Number(m[3]);
      if (m[1] === 'exit') exitCode = Number(m[2]);
    }
  }
  return { host, events, badLines, log, marks, exitCode };
};

export interface BootResult {
  readonly machine: string;
  readonly scenarios: readonly string[];
  readonly records: readonly GuestRecord[];
  /** record-channel lines that were not a valid record (a truncated last line after a timeout, ...) */
  readonly badLines: readonly string[];
  readonly console: string;
  readonly wallMs: number;
  /** the guest powered itself off after its last scenario (a `done` record) */
  readonly completed: boolean;
  /** the in-guest collector's history and log, when the boot ran it */
  readonly collector?: GuestCollectorResult;
}

export interface BootOptions {
  readonly kernel: KernelImage;
  readonly initramfs: string;
  readonly topologies: Topologies;
  readonly machine: Machine;
  readonly scenarios: readonly Scenario[];
  readonly workDir: string;
  /** every boot is bounded @defaultValue 300_000 */
  readonly timeoutMs?: number;
  /** run the collector in the guest for the whole boot (an initramfs built with it) @defaultValue false */
  readonly collector?: boolean;
}

/** the host name the in-guest collector records on a machine */
export const guestCollectorHost = (machine: string): string => `oracle-guest-${machine}`;

/** boots one machine under QEMU (TCG) and runs the scenarios in it; the records come over the second serial port */
export const bootMachine = async (o: BootOptions): Promise<BootResult> => {
  const consoleFile = join(o.workDir, `${o.machine.name}.console.log`);
  const recordsFile = join(o.workDir, `${o.machine.name}.records.jsonl`);
  const collectorFile = join(o.workDir, `${o.machine.name}.collector.jsonl`);
  for (const f of [consoleFile, recordsFile, collectorFile]) writeFileSync(f, '');
  const roles = Object.entries(o.machine.roles)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const names = o.scenarios.map((s) => s.name);
  const host = guestCollectorHost(o.machine.name);
  const append = [BASE_APPEND, o.machine.append, `ITROLES=${roles}`, `ITSCEN=${names.join(',')}`, o.collector ? `ITCOLLECT=${host}` : ''].filter(Boolean).join(' ');
  const args = [
    ...o.topologies.common,
    ...o.machine.qemu,
    '-serial',
    `file:${consoleFile}`,
    '-serial',
    `file:${recordsFile}`,
    '-serial',
    `file:${collectorFile}`,
    '-kernel',
    o.kernel.bzImage,
    '-initrd',
    o.initramfs,
    '-append',
    append,
  ];
  const started = Date.now();
  try {
    await run('qemu-system-x86_64', args, { timeout: o.timeoutMs ?? 300_000, killSignal: 'SIGKILL', maxBuffer: 16 << 20 });
  } catch (e) {
    // a timeout or a QEMU failure: what the guest wrote so far is still read, and `completed` says it stopped early
    const err = e as { killed?: boolean; stderr?: string };
    if (!err.killed && !readFileSync(recordsFile, 'utf8').includes('"t":"done"')) throw new Error(`qemu failed for ${o.machine.name}: ${err.stderr ?? String(e)}`);
  }
  const wallMs = Date.now() - started;
  const records: GuestRecord[] = [];
  const badLines: string[] = [];
  for (const raw of readFileSync(recordsFile, 'utf8').split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      badLines.push(line);
      continue;
    }
    const r = GuestRecordSchema.safeParse(parsed);
    if (r.success) records.push(r.data);
    else badLines.push(line);
  }
  const consoleText = readFileSync(consoleFile, 'utf8');
  const completed = records.some((r) => r.t === 'done');
  return { machine: o.machine.name, scenarios: names, records, badLines, console: consoleText, wallMs, completed, ...(o.collector ? { collector: readGuestCollector(host, collectorFile, consoleText) } : {}) };
};

export const removeWorkDir = (dir: string): void => rmSync(dir, { recursive: true, force: true });
