import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { getSqliteEventStore } from '../shared/eventStore/sqlite/sqliteEventStore.js';
import { createIngestService } from '../shared/ingest/ingestService.js';
import { describeWithEngine } from '../shared/testing/engines.js';
import type { GuestCollectorResult } from './boot.js';
import { endOfBootViews, historyProblems, signalCounts } from './guestCollectorChecks.js';
import { compareSteps, expectedObservation } from './collectorInputs.js';
import { compareFindings } from './findings.js';
import { findKernels, guestUapiHeaders, type KernelImage } from './kernelImage.js';
import { guestCollectorFromEnv, runOracle, type OracleRun } from './runOracle.js';
import { loadScenarios, loadTopologies, scenarioFilterFromEnv, scenariosFor } from './topologies.js';

// every kernel release of deploy/kernel-oracle/kernels boots every topology; the guest program is built once,
// against the uAPI of a release with iommufd
const kernels = await findKernels();
const uapiHeaders = guestUapiHeaders(kernels.flatMap((k) => (k.availability.available ? [k.availability.kernel] : [])));
const topologies = loadTopologies();
const scenarios = loadScenarios();
// ORACLE_SCENARIOS=a,b boots with those scenarios only (every scenario when unset)
const only = scenarioFilterFromEnv(process.env.ORACLE_SCENARIOS, scenarios);
// the collector process runs in the guest on every machine unless ORACLE_GUEST_COLLECTOR=first (one per kernel)
const guestCollector = guestCollectorFromEnv(process.env.ORACLE_GUEST_COLLECTOR);

// steps the catalogue has no event for, by design: sysfs configuration that moves no ownership, the
// close of a name whose open had failed (no file was ever open), and the kernel's CONFIG_IOMMUFD_TEST mock
// devices with the objects allocated for them (no PCI function: projections/kernel/ops/*.unit.spec.ts judges
// the model by what the kernel answered for them)
const EXPECTED_UNEXPRESSED = /^(driver_override write|close of \S+, which was never open|selftest mock object: )/;

for (const { pkg, availability } of kernels) {
  const kernel: KernelImage | undefined = availability.available ? availability.kernel : undefined;
  const workDir = process.env.ORACLE_WORK_DIR ? `${process.env.ORACLE_WORK_DIR}/${pkg}` : undefined;
  describeWithEngine(
    `oracle kernel (${pkg})`,
    availability.available ? { available: true } : { available: false, reason: availability.reason },
    `Kernel oracle (${pkg}${kernel ? `, ${kernel.release}` : ''}) > the upstream model replays what a real kernel answered (QEMU, TCG)`,
    () => {
      let run: OracleRun;
      beforeAll(async () => {
        if (!kernel) return;
        if (workDir) mkdirSync(workDir, { recursive: true });
        run = await runOracle({ kernel, guestCollector, ...(only ? { scenarios: only } : {}), ...(uapiHeaders ? { uapiHeaders } : {}), ...(workDir ? { workDir } : {}) });
      }, 45 * 60_000);

      it('given the recorded topology snapshots, when read, then each names the release that booted', () => {
        const releases = new Set(run.histories.map((h) => h.kernelRelease));
        expect([...releases]).toEqual([kernel!.release]);
      });

      it('given every topology, when booted, then each machine ran all its scenarios to the end', () => {
        expect(run.missing).toEqual([]);
        for (const b of run.boots) expect({ machine: b.machine, badLines: b.badLines, completed: b.completed }).toEqual({ machine: b.machine, badLines: [], completed: true });
      });

      it('given the guest records, when converted, then every step is a catalogue event but driver_override writes and closes of files never opened', () => {
        const others = run.histories.flatMap((h) => h.unexpressed).filter((u) => !EXPECTED_UNEXPRESSED.test(u.reason));
        expect(others).toEqual([]);
      });

      it('given every line the collector read in the guest (uevents, trace_pipe), when parsed by its own readers, then each became an event or was ignored by a named rule', () => {
        for (const c of run.collectors) expect({ machine: c.machine, signals: c.signals }).toEqual({ machine: c.machine, signals: { uevents: true, tracePipe: true } });
        const lines = run.collectors.flatMap((c) => c.lines);
        // a udevadm block's inner lines are the only ones allowed no outcome; the guest ships netlink datagrams
        const unparsed = lines.filter((l) => l.outcome === undefined || l.outcome.kind === 'invalid').map((l) => ({ machine: l.machine, scenario: l.scenario, source: l.source, line: l.line, outcome: l.outcome }));
        expect(unparsed).toEqual([]);
        expect(lines.filter((l) => l.outcome?.kind === 'ignored' && !/^[a-z]+\.[a-z-]+$/.test(l.outcome.rule))).toEqual([]);
        // the kernel did speak: driver binds and unbinds came as uevents, domain attaches as trace lines (a run of some
        // scenarios only, ORACLE_SCENARIOS, needs the kinds its recorded histories show: on 6.1 s17 attaches nothing)
        const types = new Set(run.collectors.flatMap((c) => c.scenarios.flatMap((s) => s.events.map((e) => e.type))));
        const spoken = ['DriverBound', 'DriverUnbound', 'TopologySnapshotTaken', 'TraceAttachDeviceToDomain'].filter((t) => only === undefined || run.histories.some((h) => h.events.some((e) => e.type === t)));
        expect([...types].sort()).toEqual(expect.arrayContaining(spoken));
        for (const c of run.collectors) for (const s of c.scenarios) expect({ scenario: `${c.machine}/${s.scenario}`, problems: s.sysfsProblems }).toEqual({ scenario: `${c.machine}/${s.scenario}`, problems: [] });
      });

      /** the in-guest collector of a boot */
      const guestOf = (machine: string): GuestCollectorResult => {
        const c = run.boots.find((b) => b.machine === machine)?.collector;
        if (!c) throw new Error(`${machine}: the boot did not run the collector`);
        return c;
      };
      /** the boots that ran it: every one, or the first with ORACLE_GUEST_COLLECTOR=first */
      const collected = () => {
        const boots = run.boots.filter((b) => b.collector !== undefined);
        expect(boots.map((b) => b.machine)).toEqual(run.boots.slice(0, guestCollector === 'first' ? 1 : run.boots.length).map((b) => b.machine));
        return boots;
      };
      const logOf = (machine: string, msg: string) => guestOf(machine).log.filter((l) => l.msg === msg);

      it('issue 17: the collector process ran in the guest on every machine; its history (third serial port) is catalogue events, seq 1..n, that the ingest service stores whole', async () => {
        const dir = mkdtempSync(join(tmpdir(), 'oracle-guest-ingest-'));
        for (const b of collected()) {
          const guest = guestOf(b.machine);
          expect({ machine: b.machine, exit: guest.exitCode, problems: historyProblems(guest) }).toEqual({ machine: b.machine, exit: 0, problems: [] });
          expect(guest.events.length, `${b.machine}: events shipped`).toBeGreaterThan(1);
          const store = getSqliteEventStore({ path: join(dir, `${b.machine}.sqlite`), durability: 'normal', keyDir: false });
          try {
            const { accepted, duplicate, rejected } = await createIngestService({ store }).ingest(guest.events);
            expect({ machine: b.machine, accepted, duplicate, rejected }).toEqual({ machine: b.machine, accepted: guest.events.length, duplicate: 0, rejected: 0 });
          } finally {
            await store.close();
          }
        }
      });

      it('issue 17 assert 3 on the real process: the in-guest collector read udevadm and trace_pipe lines, logged no invalid line or draft, and shipped all it spooled', () => {
        const counts: Record<string, unknown> = {};
        for (const b of collected()) {
          const invalid = [...logOf(b.machine, 'collector.line.invalid'), ...logOf(b.machine, 'collector.draft.invalid')];
          const stopped = logOf(b.machine, 'collector.stopped')[0] as { events?: number; invalid?: number; rejected?: number; left?: unknown; lines?: Record<string, number> } | undefined;
          expect({ machine: b.machine, ready: logOf(b.machine, 'collector.ready').length, invalid, stopped: stopped && { invalid: stopped.invalid, rejected: stopped.rejected, left: stopped.left, events: stopped.events } }).toEqual({
            machine: b.machine,
            ready: 1,
            invalid: [],
            stopped: { invalid: 0, rejected: 0, left: 0, events: guestOf(b.machine).events.length },
          });
          expect({ machine: b.machine, udev: (stopped!.lines?.udev ?? 0) > 0, ftrace: (stopped!.lines?.ftrace ?? 0) > 0 }).toEqual({ machine: b.machine, udev: true, ftrace: true });
          counts[b.machine] = { events: stopped!.events, lines: stopped!.lines, invalid: stopped!.invalid, bootMs: b.wallMs, collectorS: guestOf(b.machine).marks };
        }
        process.stdout.write(`in-guest collector (${pkg}, initramfs ${run.initramfs.bytes} bytes built in ${run.initramfs.buildMs} ms): ${JSON.stringify(counts)}\n`);
      });

      it('issue 17 assert 2 on the real process: at the end of the boot, the projection of the in-guest history has the members and drivers of the recorded operations, owner and domain kind "unknown"', () => {
        for (const b of collected()) {
          const views = endOfBootViews(guestOf(b.machine), run.histories.filter((h) => h.machine === b.machine));
          expect(views, `${b.machine} recorded a scenario`).not.toBeNull();
          const at = `${b.machine} after ${views!.scenario}`;
          expect({ at, ...views!.observed }).toEqual({ at, ...expectedObservation(views!.recorded, views!.observed) });
        }
      });

      it('issue 17: the in-guest collector saw the signals its readers found on the host in the raw inputs: same kinds, devices, drivers and groups, each as often', () => {
        for (const b of collected()) {
          const onHost = run.collectors.find((c) => c.machine === b.machine)!;
          expect({ machine: b.machine, signals: signalCounts(guestOf(b.machine).events) }).toEqual({ machine: b.machine, signals: signalCounts(onHost.events) });
        }
      });

      it('given what the collector observed, when projected, then at every step members and drivers equal the projection of the recorded operations, and owner and domain kind are "unknown"', () => {
        let compared = 0;
        for (const c of run.collectors)
          for (const s of c.scenarios) {
            const history = run.histories.find((h) => h.machine === c.machine && h.scenario === s.scenario);
            expect(history, `${c.machine}/${s.scenario} has a recorded history`).toBeDefined();
            for (const step of compareSteps(history!, s)) {
              expect({ at: `${c.machine}/${s.scenario}:${step.line}`, ...step.observed }).toEqual({ at: `${c.machine}/${s.scenario}:${step.line}`, ...expectedObservation(step.recorded, step.observed) });
              compared += 1;
            }
          }
        expect(compared).toBeGreaterThan(0);
      });

      it('assert 4: the violations each run raised are exactly the deliberate mistakes its scenario marks (# raises), beside the machine\'s own findings', () => {
        const mismatches = run.histories.flatMap((h) => {
          const found = compareFindings(h, scenarios.find((s) => s.name === h.scenario)!, topologies.machines.find((m) => m.name === h.machine)!);
          return found.raised.join(' ') === found.intended.join(' ') ? [] : [{ at: `${h.machine}/${h.scenario}`, ...found }];
        });
        expect(mismatches).toEqual([]);
      });

      describe.each(topologies.machines.map((m) => [m.name, scenariosFor(m, scenarios).filter((s) => only === undefined || only.includes(s.name)).map((s) => s.name)] as const))('on %s', (machine, names) => {
        it.each(names)(`given %s as the kernel ran it, when replayed under upstream, then every errno and every returned id matches`, (scenario) => {
          const r = run.replays.find((x) => x.history.machine === machine && x.history.scenario === scenario);
          expect(r, `${machine}/${scenario} was recorded`).toBeDefined();
          expect(r!.report.inputErrors).toEqual([]);
          const divergences = r!.report.hosts.flatMap((h) =>
            h.results[0]!.divergences.map((d) => ({ line: r!.history.events.find((e) => e.id === d.event.id)?.labels, type: d.event.type, recorded: d.recorded, replayed: d.replayed, rule: d.rule })),
          );
          expect(divergences).toEqual([]);
          expect(r!.report.summary.operations).toBe(r!.history.operations);
        });
      });
    },
  );
}
