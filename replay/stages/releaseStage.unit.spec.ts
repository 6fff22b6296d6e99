import { describe, expect, it } from 'vitest';
import type { IommuEvent } from '../../schemas/index.js';
import { isValidationError } from '../../schemas/index.js';
import { replayHistory } from '../replayer.js';
import { formatReport } from '../report.js';
import { CORPUS } from '../testing/scenarios.js';
import { newestModelledRelease, resolveStage } from './releaseStage.js';

const s01 = CORPUS.find((s) => s.name === 's01-singleton-happy-path')!.events;
/** the same history from a host that does not report its kernel release */
const withoutRelease = (events: readonly IommuEvent[]): IommuEvent[] =>
  events.map((e) => {
    if (e.type !== 'TopologySnapshotTaken') return e;
    const { kernelRelease: _dropped, ...capabilities } = e.data.capabilities;
    return { ...e, data: { ...e.data, capabilities } };
  });

const refusal = (spec: string): string => {
  try {
    resolveStage(spec);
  } catch (e) {
    expect(isValidationError(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error(`${spec} was accepted`);
};

describe('stages by name > upstream@<release> judges every host as that release', () => {
  it('issue 19: given a history recorded on 6.12 (iommufd and the VFIO cdev), when judged as upstream@6.1, then the report names the missing /dev/iommu as root cause and says which release it judged the host as', async () => {
    const report = await replayHistory({ variant: 'upstream@6.1', events: s01 });
    const [result] = report.hosts[0]!.results;
    expect(report.variant).toBe('upstream@6.1');
    expect(result!.divergences[0]).toMatchObject({ event: { seq: 4, type: 'IommufdOpened' }, replayed: { ok: false, errno: 'ENOENT' }, rule: 'release.iommufd.no-node' });
    expect(result!.divergences[0]!.consequenceOf).toBeUndefined();
    expect(result!.divergences.slice(1).every((d) => d.consequenceOf?.seq === 4)).toBe(true);
    expect(result!.release).toEqual({ recorded: '6.12.0', stage: '6.1', judgedAs: "6.1 (the stage's release; the host records 6.12.0)" });
    const text = formatReport(report);
    expect(text).toContain("host lab-s1 [upstream@6.1] judged as 6.1 (the stage's release; the host records 6.12.0): 11 divergence(s)");
    expect(text.split('\n')[1]).toContain('IommufdOpened: recorded ok, replayed -ENOENT (root cause)');
  });

  it('issue 19: given the same history, when judged as upstream@6.12 or as recorded, then nothing diverges and the release is the one recorded', async () => {
    const at612 = await replayHistory({ variant: 'upstream@6.12', events: s01 });
    expect(at612.summary.divergences).toBe(0);
    const asRecorded = await replayHistory({ variant: 'upstream', events: s01 });
    expect(asRecorded.summary.divergences).toBe(0);
    expect(asRecorded.hosts[0]!.results[0]!.release).toEqual({ recorded: '6.12.0', stage: null, judgedAs: '6.12.0 (recorded)' });
  });

  it('issue 19: given a history without a kernel release, when replayed on upstream, then the report says it was judged as the newest modelled release', async () => {
    const report = await replayHistory({ variant: 'upstream', events: withoutRelease(s01) });
    const release = report.hosts[0]!.results[0]!.release!;
    expect(release.recorded).toBeNull();
    expect(release.judgedAs).toBe(`the newest modelled release, ${newestModelledRelease()} or later (the host records no kernel release: every modelled feature present)`);
    expect(formatReport(report)).toContain(`judged as the newest modelled release, ${newestModelledRelease()} or later`);
    // a stage's release applies whether or not the host records one
    const old = await replayHistory({ variant: 'upstream@6.1', events: withoutRelease(s01) });
    expect(old.hosts[0]!.results[0]!.release!.judgedAs).toBe("6.1 (the stage's release; the host records none)");
    expect(old.hosts[0]!.results[0]!.divergences[0]!.rule).toBe('release.iommufd.no-node');
  });

  it('issue 19: given the models that do not decide per release, then their reports carry no release', async () => {
    const report = await replayHistory({ variant: 'stage2', events: s01 });
    expect(report.hosts[0]!.results[0]!.release).toBeUndefined();
  });

  it('given a stage name that is not one, then a validation error names it and what is expected', () => {
    expect(refusal('upstream@6')).toContain('"6" is not a kernel release (expected major.minor, e.g. upstream@6.12)');
    expect(refusal('stage2@6.1')).toContain('stage2 does not decide per kernel release');
    expect(refusal('upstream@4.19')).toContain('the upstream model covers 5.19 to 7.3: judge kernels before DMA ownership with legacy');
    expect(refusal('upstream@7.4')).toContain('covers 5.19 to 7.3');
    expect(refusal('upstreem')).toContain('unknown variant "upstreem"');
    expect(resolveStage('upstream@7.3').variant).toBe('upstream@7.3');
  });
});
