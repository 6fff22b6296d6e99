import { mkdirSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeWithEngine } from '../testing/engines.js';
import { compareSteps, expectedObservation } from './collectorInputs.js';
import { compareFindings } from './findings.js';
import { findKernels, guestUapiHeaders, type KernelImage } from './kernelImage.js';
import { runOracle, type OracleRun } from './runOracle.js';
import { loadScenarios, loadTopologies, scenariosFor } from './topologies.js';

// every kernel release of deploy/kernel-oracle/kernels boots every topology; the guest program is built once,
// against the uAPI of a release with iommufd
const kernels = await findKernels();
const uapiHeaders = guestUapiHeaders(kernels.flatMap((k) => (k.availability.available ? [k.availability.kernel] : [])));
const topologies = loadTopologies();
const scenarios = loadScenarios();

// steps the catalogue has no event for, by design: sysfs configuration that moves no ownership, and the
// close of a name whose open had failed (no file was ever open)
const EXPECTED_UNEXPRESSED = /^(driver_override write|close of \S+, which was never open)/;

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
        run = await runOracle({ kernel, ...(uapiHeaders ? { uapiHeaders } : {}), ...(workDir ? { workDir } : {}) });
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
        // the kernel did speak: driver binds and unbinds came as uevents, domain attaches as trace lines
        const types = new Set(run.collectors.flatMap((c) => c.scenarios.flatMap((s) => s.events.map((e) => e.type))));
        expect([...types].sort()).toEqual(expect.arrayContaining(['DriverBound', 'DriverUnbound', 'TopologySnapshotTaken', 'TraceAttachDeviceToDomain']));
        for (const c of run.collectors) for (const s of c.scenarios) expect({ scenario: `${c.machine}/${s.scenario}`, problems: s.sysfsProblems }).toEqual({ scenario: `${c.machine}/${s.scenario}`, problems: [] });
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

      describe.each(topologies.machines.map((m) => [m.name, scenariosFor(m, scenarios).map((s) => s.name)] as const))('on %s', (machine, names) => {
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
