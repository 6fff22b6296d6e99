import { z } from 'zod';

/**
 * errnos the reference names (protocol.md §1.4, §1.6, §2.3; kernel-changes-6.7-to-7.3.md: ESPIPE of the fault
 * fd, 6.11), by their Linux x86-64 numbers.
 * Events carry the name, never the number: `EPERM` reads the same in every language and log.
 */
export const ERRNO_NUMBERS = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOSPC: 28,
  ENOTTY: 25,
  ESPIPE: 29,
  EOVERFLOW: 75,
  EBADFD: 77,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  EPROBE_DEFER: 517,
} as const;

export type ErrnoName = keyof typeof ERRNO_NUMBERS;
export const ERRNO_NAMES = Object.keys(ERRNO_NUMBERS) as [ErrnoName, ...ErrnoName[]];

export const ErrnoSchema = z.enum(ERRNO_NAMES, {
  error: (iss) => `expected an errno name such as EPERM or EBUSY, got ${JSON.stringify(iss.input)}`,
});

/** `-EPERM (1)` as the kernel would log it */
export const formatErrno = (name: ErrnoName): string => `-${name} (${ERRNO_NUMBERS[name]})`;
