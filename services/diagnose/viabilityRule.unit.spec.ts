import { describe, expect, it } from 'vitest';
import { DEFAULT_MANAGED_DMA_DRIVERS } from '../../schemas/index.js';
import { upstreamDecider } from '../../projections/kernel/upstream.decider.js';
import { legacyDecider } from '../../replay/models/legacy.decider.js';
import type { Operation, ProtocolDecider } from '../../projections/kernel/types.js';
import { AUDIO, GPU, topology } from '../../replay/testing/fixtures.js';
import { diagnose } from './diagnose.js';
import { parseEvidence } from './parseEvidence.js';

// the reference topology's group 7 holds GPU and AUDIO: the GPU on vfio-pci, the audio function on `driver`
const modelSaysViable = (decider: ProtocolDecider, driver: string | null): boolean => {
  const state = decider.initialState(topology({ drivers: { [GPU]: 'vfio-pci', [AUDIO]: driver } }));
  const open: Operation = { kind: 'openGroup', group: 7, groupFd: 'g7' };
  for (const e of decider.decide(open, state).events) decider.evolve(state, e);
  const status = decider.decide({ kind: 'groupStatus', group: 7, groupFd: 'g7' }, state).outcome;
  if (!status.ok) throw new Error(`${decider.variant}: VFIO_GROUP_GET_STATUS failed: ${JSON.stringify(status)}`);
  return status.viable === true;
};

const paste = (driver: string | null): string =>
  [
    'IOMMU Group 7:',
    `\t${GPU.slice(5)} VGA compatible controller [0300]: NVIDIA TU104 [10de:1eb8]`,
    '\t\tKernel driver in use: vfio-pci',
    `\t${AUDIO.slice(5)} Audio device [0403]: NVIDIA TU104 HD Audio [10de:10f8]`,
    driver === null ? '\t\tKernel modules: snd_hda_intel' : `\t\tKernel driver in use: ${driver}`,
  ].join('\n');

const DRIVERS: (string | null)[] = [...DEFAULT_MANAGED_DMA_DRIVERS, null, 'snd_hda_intel', 'nvidia', 'nouveau', 'nvidia-gpu', 'xhci_hcd', 'amd64_edac', 'vfio-pci-variant-unknown'];

describe('diagnose and the kernel model share one viability rule (issue 22 item 2, issue 16)', () => {
  it.each(DRIVERS.map((d) => [d]))('issue 22: upstream rule: with the audio function on %s, diagnose says viable exactly when the upstream model does', (driver) => {
    const d = diagnose(parseEvidence(paste(driver)), { rule: 'upstream' });
    expect(d.verdict === 'viable').toBe(modelSaysViable(upstreamDecider, driver));
  });

  it.each(DRIVERS.map((d) => [d]))('issue 22: legacy rule: with the audio function on %s, diagnose says viable exactly when the pre-v5.19 model does', (driver) => {
    const d = diagnose(parseEvidence(paste(driver)), { rule: 'legacy' });
    expect(d.verdict === 'viable').toBe(modelSaysViable(legacyDecider, driver));
  });
});
