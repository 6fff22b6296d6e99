import { describe, expect, it } from 'vitest';
import { corpusCounts, statesFinding, type CorpusCase } from './corpusTable.js';
import { diagnose } from './diagnose.js';
import { parseEvidence } from './parseEvidence.js';

const settled = { wrong: 'w', fix: 'f' } as const;
const row = (c: Partial<CorpusCase> & Pick<CorpusCase, 'expected'>, paste: string) => ({
  c: { case: 'x', source: 'https://github.com/a/b/issues/1', formats: [], outcome: settled, ...c } as CorpusCase,
  d: diagnose(parseEvidence(paste)),
});

const SLOT = 'kvm: -device vfio-pci,host=00:02.0,addr=0x02: PCI: slot 2 function 0 not available for vfio-pci, in use by VGA';
const NOT_VIABLE = 'qemu-system-x86_64: -device vfio-pci,host=01:00.0: vfio 0000:01:00.0: group 1 is not viable';

describe('corpus table counts (issue 22)', () => {
  it('issue 22: a settled case whose thread settled a non-viability finding counts as decided right only when diagnose names that finding', () => {
    const named = row({ expected: { verdict: 'unknown', finding: 'not a viability problem' } }, SLOT);
    const unnamed = row({ expected: { verdict: 'unknown', finding: 'group 7 holds' } }, SLOT);
    expect(statesFinding(named.d, 'NOT a viability problem')).toBe(true);
    expect(corpusCounts([named])).toMatchObject({ settled: 1, byFinding: 1, byVerdict: 0, proseOnly: 0, wrong: 0 });
    expect(corpusCounts([unnamed])).toMatchObject({ settled: 1, byFinding: 0, byVerdict: 0 });
  });

  it('issue 22: a case settled in prose only is counted apart, never as decided, and a verdict other than the expected one counts as wrong', () => {
    const prose = row({ expected: { verdict: 'unknown' }, settledInProseOnly: 'the drivers are only in the prose' }, 'IOMMU Group 15:\n\t09:00.0 VGA compatible controller [0300]: NVIDIA [10de:21c4]');
    const wrong = row({ expected: { verdict: 'viable' } }, NOT_VIABLE);
    const right = row({ expected: { verdict: 'not-viable' } }, NOT_VIABLE);
    expect(corpusCounts([prose, wrong, right])).toEqual({ cases: 3, settled: 3, byVerdict: 1, byFinding: 0, proseOnly: 1, wrong: 1 });
  });
});
