import { describe, expect, it } from 'vitest';
import { createEventBuilder } from '../schemas/index.js';
import { matchesLabel, scoreFindings, type MistakeLabel } from './groundTruth.js';
import type { Violation } from './types.js';

const finding = (over: Partial<Violation> & Pick<Violation, 'ruleId' | 'opened'>): Violation => ({
  key: `${over.ruleId}|h`,
  severity: 'warning',
  host: 'h',
  message: 'm',
  evidence: [],
  ...over,
});
const at = (seq: number) => ({ eventId: `e${seq}`, seq, timeNs: String(seq) });

describe('ground truth > matching findings to labels (issue 18)', () => {
  const label = (from: number, until: number | null, over: Partial<MistakeLabel> = {}): MistakeLabel => ({
    mistake: 'm',
    ruleId: 'sequence-gap',
    host: 'h',
    group: null,
    device: null,
    from: { eventId: `e${from}`, seq: from },
    until: until === null ? null : { eventId: `e${until}`, seq: until },
    ...over,
  });

  it('a finding opened inside the label window, on the same rule, host, group and device, matches; outside it does not', () => {
    const l = label(10, 20, { ruleId: 'access-before-bind', group: 3, device: 'd' });
    expect(matchesLabel(finding({ ruleId: 'access-before-bind', opened: at(15), group: 3, device: 'd' }), l)).toBe(true);
    expect(matchesLabel(finding({ ruleId: 'access-before-bind', opened: at(21), group: 3, device: 'd' }), l)).toBe(false);
    expect(matchesLabel(finding({ ruleId: 'access-before-bind', opened: at(15), group: 4, device: 'd' }), l)).toBe(false);
    expect(matchesLabel(finding({ ruleId: 'access-before-bind', opened: at(15), group: 3, device: 'e' }), l)).toBe(false);
    expect(matchesLabel(finding({ ruleId: 'tenant-mixing', opened: at(15), group: 3 }), l)).toBe(false);
  });

  it('trust #17: a reordered delivery (the late event, which ends the label, has the lower seq) matches the gap its early event opened', () => {
    // given seq 26 delivered before seq 25: the gap opens at 26 and the late 25 fills it
    const reordered = label(26, 25);
    // then the finding opened by seq 26 is the labelled one, and one opened later is not
    expect(matchesLabel(finding({ ruleId: 'sequence-gap', opened: at(26) }), reordered)).toBe(true);
    expect(matchesLabel(finding({ ruleId: 'sequence-gap', opened: at(27) }), reordered)).toBe(false);
  });

  it('a history scored against its labels: a swapped delivery gives one sequence-gap finding, matched by its label (precision and recall 1)', () => {
    const b = createEventBuilder({ host: 'h', startNs: 1n, stepNs: 1n });
    const snapshot = b.event('TopologySnapshotTaken', {
      capabilities: { iommu: true, interruptRemapping: true, allowUnsafeInterrupts: false, cacheCoherent: true },
      groups: [],
      devices: [],
    });
    const late = b.event('IommufdOpened', { ictx: '7:3', outcome: { ok: true } });
    const early = b.event('IommufdClosed', { ictx: '7:3' });
    const scores = scoreFindings([snapshot, early, late], [label(early.seq, late.seq, { from: { eventId: early.id, seq: early.seq }, until: { eventId: late.id, seq: late.seq } })]);
    expect(scores.perRule).toEqual([{ ruleId: 'sequence-gap', labels: 1, findings: 1, truePositives: 1, labelsFound: 1, precision: 1, recall: 1 }]);
  });
});
