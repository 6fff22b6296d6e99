import { createSeedDecider } from './seed.js';

/** seed stage-2: 1:N groups, viability at first bind, BOUND_DRIVER notifier, one IOASID per group */
export const stage2Decider = createSeedDecider(2, 'seed stage-2: 1:N groups, viability checked at first bind, BOUND_DRIVER notifier (BUG_ON), a single IOASID per group');
