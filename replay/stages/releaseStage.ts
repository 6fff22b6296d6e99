import { ValidationError } from '../../schemas/index.js';
import { parseRelease, RELEASE_FEATURES, type Release } from '../../projections/kernel/releases.js';
import type { ModelEvent, ModelState, ObservationBody, ProtocolDecider } from '../../projections/kernel/types.js';
import { isVariantName, VARIANT_NAMES } from '../../projections/kernel/types.js';
import { VARIANTS } from '../variants.js';

/**
 * Stages named on the command line or in the API: a built-in variant (`stage2`, `upstream`), or the
 * upstream model judging every host as one kernel release (`upstream@6.1`, `upstream@7.3`): "what changes
 * for this corpus if the fleet moves to 7.3?". Stages defined as data (stage files) build on these
 * (dataStage.ts).
 */

/** the releases the upstream model and the catalogue cover: DMA ownership (5.19) to the 7.3 merge window */
export const FIRST_RELEASE: Release = [5, 19];
export const LAST_RELEASE: Release = [7, 3];

const before = (a: Release, b: Release): boolean => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
const show = (r: Release): string => `${r[0]}.${r[1]}`;

/** the newest release whose features the model distinguishes: a host without a known release is judged as it (or later) */
export const newestModelledRelease = (): string =>
  show(Object.values(RELEASE_FEATURES).reduce<Release>((newest, f) => (before(newest, f.since) ? f.since : newest), FIRST_RELEASE));

const withRelease = <E extends ModelEvent>(event: E, release: string): E =>
  event.type === 'TopologySnapshotTaken'
    ? ({ ...event, data: { ...event.data, capabilities: { ...event.data.capabilities, kernelRelease: release } } } as E)
    : event;

/** the decider judging every host as `release`, whatever its snapshot records */
export const atRelease = (decider: ProtocolDecider, release: string): ProtocolDecider => {
  const evolve = (state: ModelState, event: ModelEvent): ModelState => decider.evolve(state, withRelease(event, release));
  return {
    ...decider,
    variant: `${decider.variant}@${release}`,
    description: `${decider.description}, judged as Linux ${release} whatever release a host records`,
    initialState: (topology?: ObservationBody) => {
      const state = decider.initialState(topology === undefined ? undefined : withRelease(topology, release));
      state.caps = { ...state.caps, kernelRelease: release };
      return state;
    },
    evolve,
    release: { fixed: release },
  };
};

/**
 * The release a per-release decider judged a host as, for the report: the stage's, else the one the host
 * recorded, else (none recorded) the newest the model distinguishes, said so.
 */
export const judgedReleaseText = (fixed: string | null, recorded: string | null): string => {
  if (fixed !== null) return `${fixed} (the stage's release${recorded !== null ? `; the host records ${recorded}` : '; the host records none'})`;
  if (recorded !== null) return `${recorded} (recorded)`;
  return `the newest modelled release, ${newestModelledRelease()} or later (the host records no kernel release: every modelled feature present)`;
};

const releaseOf = (text: string, spec: string): string => {
  const r = /^\d+\.\d+$/.test(text) ? parseRelease(text) : null;
  if (r === null) throw new ValidationError(`--stage: ${JSON.stringify(spec)}: ${JSON.stringify(text)} is not a kernel release (expected major.minor, e.g. upstream@6.12)`, [{ path: 'stage', message: 'not a release' }]);
  if (before(r, FIRST_RELEASE) || before(LAST_RELEASE, r)) {
    const hint = before(r, FIRST_RELEASE) ? ': judge kernels before DMA ownership with legacy' : '';
    throw new ValidationError(`--stage: ${JSON.stringify(spec)}: the upstream model covers ${show(FIRST_RELEASE)} to ${show(LAST_RELEASE)}${hint}`, [{ path: 'stage', message: 'release out of range' }]);
  }
  return text;
};

/** a stage by name: `legacy` … `upstream`, or `upstream@<major.minor>`; a clear error otherwise */
export const resolveStage = (spec: string): ProtocolDecider => {
  const [name, release, ...rest] = spec.split('@');
  if (!isVariantName(name) || rest.length > 0) {
    throw new ValidationError(`--stage: unknown variant ${JSON.stringify(spec)} (expected ${VARIANT_NAMES.join(', ')}, upstream@<release>, or a stage file)`, [{ path: 'stage', message: 'unknown variant' }]);
  }
  const decider = VARIANTS[name];
  if (release === undefined) return decider;
  if (decider.release === undefined) {
    throw new ValidationError(`--stage: ${JSON.stringify(spec)}: ${name} does not decide per kernel release (only upstream does: upstream@${show(LAST_RELEASE)})`, [{ path: 'stage', message: 'not per release' }]);
  }
  return atRelease(decider, releaseOf(release, spec));
};
