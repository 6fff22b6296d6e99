import type { DomainRef } from '../types.js';
import { boundFdOf, domainRefOf } from './hostView.js';
import { defineRule, type MemberRule } from './rule.js';

const describeDomain = (d: DomainRef): string =>
  d.kind === 'hwpt' ? `hwpt ${d.hwptId} of iommufd ${d.ictx}` : d.kind === 'container' ? `container ${d.container}'s domain` : `the ${d.kind} domain`;

/**
 * Information, not a finding: the kernel translates every member of a group by the group's domain, for one
 * owner. Recorded so an investigator sees whose page table a device's DMA goes through.
 */
export const translatedByUnattachedDomain: MemberRule = {
  ...defineRule({
    id: 'translated-by-unattached-domain',
    severity: 'info',
    title: 'device DMA is translated through a page table it did not attach (group-wide domain, kernel design)',
    harm: 'information: domain changes are group-wide by kernel design, so a member that did not attach (a bridge, an unbound function, a hot-added one, a device moved by its sibling\'s replace) follows its group\'s single owner; no trust boundary is crossed',
    reference: '§1.2 first attach moves whole group, non-last detach, replace; §4 invariant 5; S11, S17, S27, S29',
    guards:
      'domain changes are group-wide (__iommu_group_set_domain_internal): a sibling attach or replace moves every member, and a non-last detach leaves the device on the hwpt',
    opens: 'recorded when a sibling attach/replace or a hot-add puts the member on a hwpt it did not attach',
    closes: 'closed when it attaches that hwpt itself, or the group leaves it',
    transient:
      'end of the owner\'s operation sequence: a member bound to the iommufd that owns the hwpt and not attached (the multi-function attach .0 then .1, the detach of each at shutdown) is the owner\'s own sequence and is not recorded',
    impossibleUpstream: false,
  }),
  canHold: (domain) => domain.kind === 'hwpt',
  holdsFor: (device, _g, domain, v) => {
    const selfAttached = v.facts.devices.get(device)?.selfAttachedHwpt ?? null;
    if (domain.kind !== 'hwpt' || selfAttached === domain.hwpt) return false;
    // the owner's own device between its siblings' attach (or detach) and its own: part of one sequence
    return !(selfAttached === null && boundFdOf(v.model, device)?.ictx === domain.ictx);
  },
  describe: (device, g, groupDomain, v) => {
    const selfAttached = v.facts.devices.get(device)?.selfAttachedHwpt ?? null;
    const domain = describeDomain(domainRefOf(groupDomain));
    return selfAttached !== null
      ? `${device} attached hwpt ${selfAttached} but a sibling's replace moved group ${g.id} to ${domain}`
      : `${device} did not attach ${domain} but its DMA is translated by it (group ${g.id} domain changes are group-wide)`;
  },
};
