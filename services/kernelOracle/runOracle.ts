import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replayHistory, type ReplayReport } from '../../replay/index.js';
import { runCollectorOn, type CollectorBoot } from './collectorInputs.js';
import { bootMachine, buildInitramfs, removeWorkDir, type BootResult } from './boot.js';
import { buildGuestCollector } from './guestCollector.js';
import type { KernelImage } from './kernelImage.js';
import { toHistories, type ScenarioHistory } from './toEvents.js';
import { loadScenarios, loadTopologies, scenariosFor } from './topologies.js';

export interface OracleReplay {
  readonly history: ScenarioHistory;
  readonly report: ReplayReport;
}

export interface OracleRun {
  readonly kernel: KernelImage;
  readonly boots: readonly BootResult[];
  readonly histories: readonly ScenarioHistory[];
  readonly replays: readonly OracleReplay[];
  /** the collector's code over what each boot captured raw (uevents, trace_pipe, sysfs) */
  readonly collectors: readonly CollectorBoot[];
  /** scenarios a machine should have run and did not report (a boot cut short) */
  readonly missing: readonly string[];
  /** the initramfs every boot used, and how long building it (and the collector bundle) took */
  readonly initramfs: { readonly path: string; readonly bytes: number; readonly buildMs: number };
}

export type GuestCollectorOn = 'all' | 'first' | 'none';

/** ORACLE_GUEST_COLLECTOR for the test suite: `first` runs it on one machine per kernel, anything else on every machine */
export const guestCollectorFromEnv = (value: string | undefined): 'all' | 'first' => (value === 'first' ? 'first' : 'all');

export interface RunOracleOptions {
  readonly kernel: KernelImage;
  /** machine names to boot @defaultValue every machine of topologies.json */
  readonly machines?: readonly string[];
  /** scenario names to run (a scenario being written) @defaultValue every scenario a machine's roles allow */
  readonly scenarios?: readonly string[];
  /** keep the console and record files here @defaultValue a temporary folder removed afterwards */
  readonly workDir?: string;
  readonly timeoutMs?: number;
  /** uAPI headers with iommufd for the guest program (guestUapiHeaders) @defaultValue the kernel's own */
  readonly uapiHeaders?: string;
  /**
   * where the collector process runs in the guest (node, udevadm and the bundle in the initramfs): every machine,
   * the first machine booted only (a tighter CI budget: ORACLE_GUEST_COLLECTOR=first), or none @defaultValue 'all'
   */
  readonly guestCollector?: GuestCollectorOn;
}

/**
 * Boots every machine once with the scenarios its roles allow, turns the guest's records into one
 * history per (machine, scenario) and replays each under the `upstream` model. The collector process runs in the
 * guest for the whole boot (its history comes back over the third serial port), and the host runs its readers again
 * over the raw inputs the guest program captured, step by step.
 */
export const runOracle = async (o: RunOracleOptions): Promise<OracleRun> => {
  const topologies = loadTopologies();
  const scenarios = loadScenarios();
  const workDir = o.workDir ?? mkdtempSync(join(tmpdir(), 'iommutrail-oracle-'));
  try {
    const started = Date.now();
    const collectorOn = o.guestCollector ?? 'all';
    const collectorDir = collectorOn !== 'none' ? await buildGuestCollector(join(workDir, 'guest-collector')) : undefined;
    const initramfs = await buildInitramfs(o.kernel, workDir, o.uapiHeaders, collectorDir);
    const built = { path: initramfs, bytes: statSync(initramfs).size, buildMs: Date.now() - started };
    const boots: BootResult[] = [];
    const histories: ScenarioHistory[] = [];
    const missing: string[] = [];
    const collectors: CollectorBoot[] = [];
    for (const machine of topologies.machines.filter((m) => o.machines === undefined || o.machines.includes(m.name))) {
      const mine = scenariosFor(machine, scenarios).filter((s) => o.scenarios === undefined || o.scenarios.includes(s.name));
      const boot = await bootMachine({ kernel: o.kernel, initramfs, topologies, machine, scenarios: mine, workDir, collector: collectorOn === 'all' || (collectorOn === 'first' && boots.length === 0), ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}) });
      boots.push(boot);
      collectors.push(await runCollectorOn(machine.name, boot.records, workDir));
      const got = toHistories(machine, boot.records);
      histories.push(...got);
      for (const s of mine) if (!got.some((h) => h.scenario === s.name && h.complete)) missing.push(`${machine.name}/${s.name}`);
    }
    const replays: OracleReplay[] = [];
    for (const history of histories) replays.push({ history, report: await replayHistory({ variant: 'upstream', events: history.events, source: history.host }) });
    return { kernel: o.kernel, boots, histories, replays, missing, collectors, initramfs: built };
  } finally {
    if (o.workDir === undefined) removeWorkDir(workDir);
  }
};
