import { defineRule } from './rule.js';

/** a device access refused because its cdev fd was not bound yet */
export const accessBeforeBind = {
  ...defineRule({
    id: 'access-before-bind',
    severity: 'warning',
    title: 'device access attempted before BIND_IOMMUFD',
    harm: 'a user (a VMM bug or a probe) tried to reach a device before its group was DMA-blocked for it: the kernel refused, and the attempt is the evidence',
    reference: '§1.1 mmap/ioctl blocked until bind (df->access_granted); S1 step 3',
    guards: 'vfio_device_fops_* refuse with -EINVAL until the cdev fd is bound',
    opens: 'raised by the refused access',
    closes: 'closed when that fd binds or closes',
    transient: 'none needed: a correct sequence binds before it accesses, so the refused access is the finding whatever follows',
    impossibleUpstream: false,
  }),
  describe: (what: string, device: string, fd: string, errno: string): string => `${what} on ${device} (fd ${fd}) before BIND_IOMMUFD, refused -${errno}`,
};
