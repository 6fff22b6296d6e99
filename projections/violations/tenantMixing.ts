import type { DeviceState } from '../types.js';
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

const describeUser = (d: DeviceState): string => `${d.device} (${[d.tenant !== null && `tenant ${d.tenant}`, d.vm !== null && `vm ${d.vm}`].filter(Boolean).join(', ')})`;

/** the tenant-mixing rule under a policy; null when the policy turns it off */
export const createTenantMixing = (policy: TenancyPolicy | false): GroupRule | null => {
  if (policy === false) return null;
  const byTenant = policy.isolateBy.includes('tenant');
  const byVm = policy.isolateBy.includes('vm');
  const exempt = policy.exempt ?? [];
  /** the first pair of members with access whose tenant (or VM) differs, and what differs (no allocation: runs on every group change) */
  const firstMix = (
    members: readonly string[],
    devices: Readonly<Record<string, DeviceState>>,
  ): { a: DeviceState; b: DeviceState; what: 'tenant' | 'vm' } | null => {
    let tenantA: DeviceState | null = null;
    let vmA: DeviceState | null = null;
    for (let i = 0; i < members.length; i++) {
      const d = devices[members[i]!];
      if (d === undefined || !d.accessGranted) continue;
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
    holds: (g, h) => {
      // access needs a user owner or the legacy group path: without either nobody can mix
      if (g.userOwner === null && !g.legacyGroupOpen) return false;
      if (firstMix(g.members, h.devices) === null) return false;
      return !exempt.some((e) => e.group === g.group && (e.host === undefined || e.host === h.host));
    },
    describe: (g, h) => {
      const mix = firstMix(g.members, h.devices)!;
      const users = g.members
        .map((m) => h.devices[m])
        .filter((d): d is DeviceState => d !== undefined && d.accessGranted && (d.tenant !== null || d.vm !== null))
        .map(describeUser);
      const differ =
        mix.what === 'tenant'
          ? `tenants ${mix.a.tenant} and ${mix.b.tenant}`
          : `VMs ${mix.a.vm} and ${mix.b.vm}${mix.a.tenant !== null && mix.a.tenant === mix.b.tenant ? ` (both of tenant ${mix.a.tenant})` : ''}`;
      return `group ${g.group} is one isolation unit but gives DMA access to ${differ}: ${users.join('; ')}`;
    },
  };
};
