import { createSeedDecider } from './seed.js';

/** seed stage-3: stage-2 where the topology's sub-groups (TopologySnapshotTaken groups[].subGroups) may use different IOASIDs */
export const stage3Decider = createSeedDecider(3, 'seed stage-3: stage-2 plus sub-groups (from the topology) attached to different IOASIDs');
