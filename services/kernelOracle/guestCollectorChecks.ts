import { createFleetProjection, foldEvents } from '../../projections/index.js';
import type { IommuEvent } from '../../schemas/index.js';
import type { GuestCollectorResult } from './boot.js';
import { viewOf, type ObservableView } from './collectorInputs.js';
import type { ScenarioHistory } from './toEvents.js';

/**
 * What the collector process running in the guest is checked against: the recorded operations (assert 2, at the end
 * of the boot) and the host-side run of its readers over the raw inputs the guest program captured.
 */

/**
 * What a signal event says, without its envelope (seq, time and host differ between the two runs). An unbind
 * uevent carries no DRIVER: the collector names the driver it last saw bound, which the host-side run cannot know
 * between scenarios (no snapshot there), so an unbind is compared by its device.
 */
export const signalOf = (e: IommuEvent): string => {
  const d = e.data as { device?: unknown; driver?: unknown; group?: unknown };
  return [e.type, d.device ?? '-', e.type === 'DriverUnbound' ? '*' : (d.driver ?? '-'), d.group ?? '-'].join(' ');
};

/** how often each signal occurs; topology snapshots are left out (one per run in the guest, one per scenario on the host) */
export const signalCounts = (events: readonly IommuEvent[]): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const e of events) if (e.type !== 'TopologySnapshotTaken') counts[signalOf(e)] = (counts[signalOf(e)] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
};

/** the problems of a history as shipped: seq must run 1..n without a gap, every event of the collector's host */
export const historyProblems = (guest: GuestCollectorResult): string[] => {
  const problems: string[] = guest.badLines.map((b) => `not an event: ${b.error}`);
  guest.events.forEach((e, i) => {
    if (e.seq !== i + 1) problems.push(`line ${i + 1}: seq ${e.seq}`);
    if (e.host !== guest.host) problems.push(`line ${i + 1}: host ${e.host}`);
  });
  return problems;
};

export interface EndOfBootViews {
  /** the scenario that ran last: the kernel's state at the end of the boot is its state (drivers are restored before, not after, a scenario) */
  readonly scenario: string;
  readonly recorded: ObservableView;
  readonly observed: ObservableView;
}

/** at the end of the boot: the projection of the last scenario's recorded operations and of the in-guest collector's whole history */
export const endOfBootViews = (guest: GuestCollectorResult, histories: readonly ScenarioHistory[]): EndOfBootViews | null => {
  const last = histories.at(-1);
  if (!last) return null;
  const recorded = foldEvents(createFleetProjection(), last.events).hosts[last.host];
  const observed = foldEvents(createFleetProjection(), guest.events).hosts[guest.host];
  return { scenario: last.scenario, recorded: viewOf(recorded, false), observed: viewOf(observed, true) };
};
