import type { DeviceTopologyState } from './types.js';

const HEADER_TYPES = [null, 'normal', 'bridge', 'cardbus'] as const;

/**
 * The topology records of devices without PASIDs, one frozen record per value, shared by every host (issue 23: most
 * devices of a fleet are alike, and a record each was ~56 bytes per device of every host). Topology records are
 * replaced, never written in place: a write to a shared one throws. Indexed by header type, requireDirect and
 * pasidAttach.
 */
const SHARED_TOPOLOGY: readonly DeviceTopologyState[] = HEADER_TYPES.flatMap((headerType) =>
  [false, true].flatMap((requireDirect) => [false, true].map((pasidAttach) => Object.freeze({ headerType, requireDirect, maxPasids: 0, pasidAttach }))),
);

/** a device's topology record: a shared one when it has no PASIDs (and a header type the schema knows), else its own */
export const topologyRecord = (headerType: DeviceTopologyState['headerType'], requireDirect: boolean, maxPasids: number, pasidAttach: boolean): DeviceTopologyState => {
  const type = HEADER_TYPES.indexOf(headerType);
  if (maxPasids !== 0 || type < 0) return { headerType, requireDirect, maxPasids, pasidAttach };
  return SHARED_TOPOLOGY[type * 4 + (requireDirect ? 2 : 0) + (pasidAttach ? 1 : 0)]!;
};
