/** where a fact was read from; the verdict names it so a reader can check the line */
export type EvidenceKind = 'group-listing' | 'lspci' | 'ls-sysfs' | 'kernel-log' | 'vmm-error';

export interface Evidence {
  readonly kind: EvidenceKind;
  /** 1-based line of the paste */
  readonly line: number;
}

export interface DeviceFacts {
  /** normalised PCI address, `0000:01:00.0` */
  readonly device: string;
  description?: string;
  /** `0300` from `[0300]`, or the full `030000` when lspci printed the prog-if */
  classCode?: string;
  vendorId?: string;
  deviceId?: string;
  /**
   * undefined: never shown (unknown). `{ name: null }`: shown with no driver bound. `current` is false
   * for evidence of a past state (a kernel log line), which later evidence overrides.
   */
  driver?: { name: string | null; current: boolean; evidence: Evidence };
  modules?: string[];
  group?: { group: number; evidence: Evidence };
}

export interface GroupFacts {
  readonly group: number;
  readonly members: Set<string>;
  /** true when the paste contains a full listing of the group's devices (shell loop, ls of its devices dir) */
  complete: boolean;
  readonly evidence: Evidence[];
}

export type ErrorOrigin = 'qemu' | 'libvirt' | 'kubevirt' | 'kernel' | 'other';

export interface ErrorFact {
  readonly origin: ErrorOrigin;
  readonly group?: number;
  readonly device?: string;
  readonly message: string;
  readonly evidence: Evidence;
}

/** a device id registered with vfio-pci or pci-stub (`vfio_pci: add [10de:1e81...]`, `pci-stub: add 10DE:1E81`) */
export interface IdRegistration {
  readonly driver: 'vfio-pci' | 'pci-stub';
  readonly vendorId: string;
  readonly deviceId: string;
  readonly evidence: Evidence;
}

/** everything the importers read out of one paste, combined across its blocks */
export interface Facts {
  readonly devices: Map<string, DeviceFacts>;
  readonly groups: Map<number, GroupFacts>;
  readonly errors: ErrorFact[];
  readonly idRegistrations: IdRegistration[];
  /** devices the kernel log shows refusing the blocking domain (S33, require_direct) */
  readonly requireDirect: Map<string, Evidence>;
  /** `Linux version 5.15.0-...` or `uname -r`, when the paste contains it */
  kernelRelease?: string;
  /** which input formats were recognised, with the number of lines each contributed */
  readonly formats: Map<EvidenceKind, number>;
  /** contradictions between blocks (a device listed in two groups, two current drivers) */
  readonly conflicts: string[];
  readonly lineCount: number;
}

export const emptyFacts = (lineCount = 0): Facts => ({
  devices: new Map(),
  groups: new Map(),
  errors: [],
  idRegistrations: [],
  requireDirect: new Map(),
  formats: new Map(),
  conflicts: [],
  lineCount,
});
