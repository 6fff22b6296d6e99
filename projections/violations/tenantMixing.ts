import type { GroupState as ModelGroup } from '../kernel/types.js';
import type { DeviceFacts } from '../types.js';
import { accessGrantedOf, type HostView } from './hostView.js';
import { defineRule, type GroupRule } from './rule.js';

/** policy as data: which actor fields must not differ among the devices in use in one group */
export interface TenancyPolicy {
  /** @defaultValue ['tenant', 'vm'] */
  readonly isolateBy: readonly ('tenant' | 'vm')[];
  /** groups allowed to be shared (e.g. a deliberately shared accelerator); host omitted = any host */
  readonly exempt?: readonly { readonly host?: string; readonly group: number }[];
}

export const DEFAULT_TENANCY_POLICY: TenancyPolicy = { isolateBy: ['tenant', 'vm'] };

export const tenantMixingDefinition = defineRule({
  id: 'tenant-mixing',
  severity: 'critical',
  title: 'devices of one group usable by different tenants or VMs at once (policy)',
  harm: 'members of one group are not isolated from each other, so two tenants or VMs with access to them can each DMA into the other\'s memory',
  reference: '§1.2 the group is the isolation unit; §1.3 sub-groups not implemented (policy rule)',
  guards: 'members of one group are not isolated from each other, so they must not serve different tenants',
  opens: 'raised by the bind (or legacy device open) that gave a second tenant/VM access to a member while another tenant/VM has access to a sibling',
  closes: 'closed when only one tenant/VM has access',
  transient:
    'condition on the actors: only members whose fd has access (bound to an iommufd, or opened through the legacy group) count, and only a tenant or VM that differs (the policy\'s isolateBy) mixes; an open fd the kernel then refuses to bind (open, -EPERM, close) gives no access and is no mixing',
  impossibleUpstream: false,
});

/** a member with access and a tenant or VM: its name and its facts (who acted through its fds) */
interface User {
  readonly device: string;
  readonly facts: DeviceFacts;
}

const describeUser = (u: User): string => `${u.device} (${[u.facts.tenant !== null && `tenant ${u.facts.tenant}`, u.facts.vm !== null && `vm ${u.facts.vm}`].filter(Boolean).join(', ')})`;

/** the members with access (an fd with `access_granted`: bound, or opened through the legacy group) and a tenant or VM, in member order */
const usersOf = (g: ModelGroup, v: HostView): User[] => {
  const out: User[] = [];
  for (const device of g.devices) {
    const facts = v.facts.devices.get(device);
    if (facts !== undefined && (facts.tenant !== null || facts.vm !== null) && accessGrantedOf(v.model, device)) out.push({ device, facts });
  }
  return out;
};

/** the tenant-mixing rule under a policy; null when the policy turns it off */
export const createTenantMixing = (policy: TenancyPolicy | false): GroupRule | null => {
  if (policy === false) return null;
  const byTenant = policy.isolateBy.includes('tenant');
  const byVm = policy.isolateBy.includes('vm');
  const exempt = policy.exempt ?? [];
  /** the first pair of members with access whose tenant (or VM) differs, and what differs (runs on every group change: no list built) */
  const firstMix = (g: ModelGroup, v: HostView): { a: DeviceFacts; b: DeviceFacts; what: 'tenant' | 'vm' } | null => {
    let tenantA: DeviceFacts | null = null;
    let vmA: DeviceFacts | null = null;
    for (const device of g.devices) {
      const d = v.facts.devices.get(device);
      // who acted first (most members have nobody), then whether its fds have access
      if (d === undefined || (!(byTenant && d.tenant !== null) && !(byVm && d.vm !== null)) || !accessGrantedOf(v.model, device)) continue;
      if (byTenant && d.tenant !== null) {
        if (tenantA === null) tenantA = d;
        else if (tenantA.tenant !== d.tenant) return { a: tenantA, b: d, what: 'tenant' };
      }
      if (byVm && d.vm !== null) {
        if (vmA === null) vmA = d;
        else if (vmA.vm !== d.vm) return { a: vmA, b: d, what: 'vm' };
      }
    }
    return null;
  };
  return {
    ...tenantMixingDefinition,
    holds: (g, v) => {
      // access needs a user owner or the legacy group path: without either nobody can mix
      if (g.owner === null && g.groupFd === null) return false;
      if (firstMix(g, v) === null) return false;
      return !exempt.some((e) => e.group === g.id && (e.host === undefined || e.host === v.host));
    },
    describe: (g, v) => {
      const mix = firstMix(g, v)!;
      const users = usersOf(g, v).map(describeUser);
      const differ =
        mix.what === 'tenant'
          ? `tenants ${mix.a.tenant} and ${mix.b.tenant}`
          : `VMs ${mix.a.vm} and ${mix.b.vm}${mix.a.tenant !== null && mix.a.tenant === mix.b.tenant ? ` (both of tenant ${mix.a.tenant})` : ''}`;
      return `group ${g.id} is one isolation unit but gives DMA access to ${differ}: ${users.join('; ')}`;
    },
  };
};
