import { defineRule, IMPOSSIBLE_UPSTREAM } from './rule.js';

/** a device access that succeeded on an unbound cdev fd */
export const accessGrantedWithoutBind = {
  ...defineRule({
    id: 'access-granted-without-bind',
    severity: 'critical',
    title: `device access succeeded on an unbound cdev fd (${IMPOSSIBLE_UPSTREAM})`,
    harm: 'a user reached a device (MMIO, config space, DMA set-up) before its group was DMA-blocked: its DMA goes through a kernel domain',
    reference: '§1.1 access_granted gate; S1 step 3',
    guards: 'the access_granted gate: without it a user reaches the device before the group is DMA-blocked',
    opens: 'raised by the successful access',
    closes: 'closed when that fd binds or closes',
    transient: 'none needed: upstream refuses every access before the bind',
    impossibleUpstream: true,
  }),
  describe: (what: string, device: string, fd: string): string =>
    `${what} on ${device} (fd ${fd}) succeeded before BIND_IOMMUFD: the access_granted gate did not hold: ${IMPOSSIBLE_UPSTREAM}`,
};
