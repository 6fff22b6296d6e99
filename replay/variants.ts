import { legacyDecider } from './models/legacy.decider.js';
import { stage1Decider, stage2Decider, stage3Decider } from './models/seed.decider.js';
import type { ProtocolDecider, VariantName } from '../projections/kernel/types.js';
import { upstreamDecider } from '../projections/kernel/upstream.decider.js';

/** every protocol model by name, in protocol order */
export const VARIANTS: Readonly<Record<VariantName, ProtocolDecider>> = {
  legacy: legacyDecider,
  stage1: stage1Decider,
  stage2: stage2Decider,
  stage3: stage3Decider,
  // the one model that answers per kernel release (releases.ts): the report says which release it judged each host as
  upstream: { ...upstreamDecider, release: { fixed: null } },
};
