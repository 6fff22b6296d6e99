import { describe, expect, it } from 'vitest';
import { generateHistory } from '../../projections/testing/generateHistory.js';
import type { IommuEvent } from '../../schemas/index.js';
import { groupWith } from '../../projections/kernel/records.js';
import { crossModelDifferences, foldSideBySide } from './crossModel.js';
import { CORPUS } from './scenarios.js';

/** the projection and the upstream model of each host, compared after every event */
const foldBoth = (events: readonly IommuEvent[], check: (at: number, host: string, differences: string[]) => void) =>
  foldSideBySide(events, ({ at, event, host, model }) => check(at, event.host, crossModelDifferences(host, model)));

describe('cross-model comparison (crossModel.ts)', () => {
  it('given every corpus history, when folded by the fleet projection and by upstream evolve, then the shared facts agree after every event', () => {
    for (const scenario of CORPUS) foldBoth(scenario.events, (at, host, differences) => expect({ scenario: scenario.name, at, host, differences }).toEqual({ scenario: scenario.name, at, host, differences: [] }));
  });

  it('given the generated fleet history the projection benchmark folds (whole ownership cycles on 4 hosts), when folded by both, then the shared facts agree after every event', () => {
    let checked = 0;
    foldBoth(generateHistory({ events: 5_000, hosts: 4, finishCycles: true }), (at, host, differences) => {
      checked++;
      if (differences.length > 0) expect({ at, host, differences }).toEqual({ at, host, differences: [] });
    });
    expect(checked).toBeGreaterThanOrEqual(5_000);
  });

  it('given a model state that disagrees with the projection, then the comparison names the field', () => {
    const { fleet, models } = foldBoth(CORPUS[0]!.events, () => undefined);
    const [host, model] = [...models.entries()][0]!;
    const owned = [...model.groups.values()].find((g) => g.owner !== null) ?? [...model.groups.values()][0]!;
    model.groups.set(owned.id, groupWith(owned, { owner: owned.owner === null ? { kind: 'ictx', ictx: 'nobody' } : null, attached: [...owned.attached, 'extra'] }));
    expect(crossModelDifferences(fleet.hosts[host], model)).toEqual([`groups.${owned.id}.owner`, `groups.${owned.id}.attached`]);
  });
});
