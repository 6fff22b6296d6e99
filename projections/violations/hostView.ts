import { fdsOfDevice } from '../kernel/fdIndex.js';
import { DEFAULT_DOMAIN as DEFAULT_MODEL_DOMAIN } from '../kernel/kernel.js';
import type { DeviceFdState as ModelFd, Domain, GroupState as ModelGroup, ModelState, Owner } from '../kernel/types.js';
import type { DomainRef, HostFacts, UserOwner } from '../types.js';

/**
 * What the violation rules read of a host (issue 16): the upstream kernel model the fold folds
 * (`HostState.kernel`) and the projection's own facts (who acted, what a device attached itself, what the
 * projection knows of a group), not the read-model records, which are derived from these two. The reads
 * below are the ones the rules and the read model's derivation (readModel.ts) share: one place each.
 */
export interface HostView {
  readonly host: string;
  readonly model: ModelState;
  readonly facts: HostFacts;
  /** whether a driver counts toward `owner_cnt` (a kernel DMA-API driver: not in the host's managed-DMA set) */
  readonly isKernelDma: (driver: string | null) => boolean;
}

/** of a device's open fds, the one bound to an iommufd (cdev bind, or the group-path open that bound it): its first */
export const boundOf = (fds: readonly ModelFd[]): ModelFd | undefined => {
  for (const f of fds) if (f.ictx !== null) return f;
  return undefined;
};

/** the device's fd bound to an iommufd: `boundOf` its fds */
export const boundFdOf = (model: ModelState, device: string): ModelFd | undefined => boundOf(fdsOfDevice(model, device));

/** `df->access_granted` on one of the device's fds */
export const accessGrantedOf = (model: ModelState, device: string): boolean => {
  for (const f of fdsOfDevice(model, device)) if (f.accessGranted) return true;
  return false;
};

/** members bound to a kernel DMA-API driver (`owner_cnt` with owner NULL) */
export const kernelDmaMembers = (model: ModelState, g: ModelGroup, isKernelDma: HostView['isKernelDma']): number => {
  let n = 0;
  for (const m of g.devices) if (isKernelDma(model.devices.get(m)?.driver ?? null)) n++;
  return n;
};

const DEFAULT_DOMAIN: DomainRef = Object.freeze({ kind: 'default' });
const BLOCKING_DOMAIN: DomainRef = Object.freeze({ kind: 'blocking' });

/** the model's domain in the read model's words (immutable: a change assigns a new one) */
export const domainRefOf = (d: Domain): DomainRef => {
  switch (d.kind) {
    case 'default':
      return DEFAULT_DOMAIN;
    case 'blocking':
      return BLOCKING_DOMAIN;
    case 'hwpt':
      return { kind: 'hwpt', hwptId: d.hwpt, ictx: d.ictx };
    case 'container':
      return { kind: 'container', container: d.container };
    default: {
      const unreachable: never = d;
      return unreachable;
    }
  }
};

export const userOwnerOf = (o: Owner): UserOwner => (o.kind === 'ictx' ? { kind: 'iommufd', handle: o.ictx } : { kind: 'legacy-container', handle: o.container });

/** a user owner as the messages name it (`iommufd fdA`) */
export const ownerText = (o: Owner): string => (o.kind === 'ictx' ? `iommufd ${o.ictx}` : `legacy-container ${o.container}`);

/**
 * The group's domain (`group->domain`). Upstream moves whole groups; the model keeps the domain per device,
 * because it follows a recorded attach to another hwpt than the group's (the kernel refuses it) by moving
 * that device alone. A member not attached is only ever moved with the whole group, so its domain is the
 * group's; when every member is attached, the first one attached set it.
 */
export const groupDomainOf = (model: ModelState, g: ModelGroup): Domain => {
  for (const m of g.devices) if (!g.attached.includes(m)) return model.devices.get(m)?.domain ?? DEFAULT_MODEL_DOMAIN;
  return model.devices.get(g.attached[0] ?? '')?.domain ?? DEFAULT_MODEL_DOMAIN;
};

/** a model group the read model shows: it has members, an owner or an open legacy node */
export const groupShown = (g: ModelGroup): boolean => g.devices.length > 0 || g.owner !== null || g.groupFd !== null;

/** the group `id` as the read model shows it (undefined: it shows none) */
export const shownGroup = (model: ModelState, id: number): ModelGroup | undefined => {
  const g = model.groups.get(id);
  return g !== undefined && groupShown(g) ? g : undefined;
};
