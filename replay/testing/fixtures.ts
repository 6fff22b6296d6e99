import type { Observation, Operation } from '../../projections/kernel/types.js';
import { createRecorder, type TopologyOptions } from './scenarios.js';

export { AUDIO, DEV_A, DEV_B, DEV_C, GPU, NIC, RMRR_USB, ROOT_PORT, USBC, XHCI } from './scenarios.js';

/** the reference topology (protocol.md §3) as a snapshot event */
export const topology = (options: TopologyOptions = {}): Observation => {
  const r = createRecorder('unit');
  r.topology(options);
  return r.events[0] as Observation;
};

/** operation builders for specs */
export const op = {
  openIommufd: (ictx = 'fdA'): Operation => ({ kind: 'openIommufd', ictx }),
  open: (device: string, deviceFd: string): Operation => ({ kind: 'openDevice', device, deviceFd }),
  bind: (device: string, deviceFd: string, ictx = 'fdA'): Operation => ({ kind: 'bindIommufd', device, deviceFd, ictx }),
  ioas: (ictx = 'fdA'): Operation => ({ kind: 'allocIoas', ictx }),
  attach: (device: string, deviceFd: string, ptId: number, pasid?: number): Operation => ({ kind: 'attachPt', device, deviceFd, ptId, pasid }),
  detach: (device: string, deviceFd: string): Operation => ({ kind: 'detachPt', device, deviceFd }),
  close: (device: string, deviceFd: string): Operation => ({ kind: 'closeDevice', device, deviceFd }),
  bindDriver: (device: string, driver: string): Operation => ({ kind: 'bindDriver', device, driver }),
  unbindDriver: (device: string, driver?: string): Operation => ({ kind: 'unbindDriver', device, driver }),
  destroy: (objectId: number, ictx = 'fdA'): Operation => ({ kind: 'destroy', ictx, objectId }),
  access: (device: string, deviceFd: string): Operation => ({ kind: 'accessDevice', device, deviceFd, access: 'mmap' }),
};
