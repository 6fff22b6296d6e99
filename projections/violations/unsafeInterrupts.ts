import { defineRule } from './rule.js';

/** a device handed to a user on a host without interrupt isolation */
export const unsafeInterrupts = {
  ...defineRule({
    id: 'unsafe-interrupts',
    severity: 'warning',
    title: 'device bound to iommufd without isolated MSI (allow_unsafe_interrupts)',
    harm: 'interrupts without isolation: a user-owned device can forge MSI writes and inject interrupts into the host or other guests',
    reference: '§1.4 step 9 (iommufd_device_bind: -EPERM without isolated MSI unless allow_unsafe_interrupts)',
    guards: 'without interrupt remapping a device can forge MSI writes; the kernel only allows it with the module parameter',
    opens: 'raised by the successful bind on a host whose snapshot recorded no interrupt remapping',
    closes: 'closed when the device is unbound',
    transient: 'none needed: the exposure lasts from the bind to the unbind and is reported with that duration',
    impossibleUpstream: false,
  }),
  describe: (device: string, ictx: string, allowed: boolean): string =>
    `${device} bound to iommufd ${ictx} on a host without isolated MSI (interrupt remapping)${allowed ? ', allowed by allow_unsafe_interrupts=1' : ''}`,
};
