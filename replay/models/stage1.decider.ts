import { createSeedDecider } from './seed.js';

/** seed stage-1: device-centric only for singleton groups; block_dma per iommu_fd; mmap refused until bind */
export const stage1Decider = createSeedDecider(1, 'seed stage-1: /dev/vfio/device nodes and iommu_fd binding only for singleton groups, block_dma per iommu_fd, access refused until bind');
