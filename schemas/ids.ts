import { z } from 'zod';

const describe = (input: unknown): string => (typeof input === 'string' ? JSON.stringify(input) : typeof input);

// a PCI address: domain:bus:device.function, as in /sys/bus/pci/devices (dev_name of a pci_dev)
const PCI_FULL = /^([0-9a-fA-F]{4,8}):([0-9a-fA-F]{2}):([0-1][0-9a-fA-F])\.([0-7])$/;
const PCI_SHORT = /^([0-9a-fA-F]{2}):([0-1][0-9a-fA-F])\.([0-7])$/;
const MDEV_UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** `01:00.0` → `0000:01:00.0`, hex folded to lower case; undefined when it is not a PCI address */
export const normalizePciAddress = (raw: string): string | undefined => {
  const full = PCI_FULL.exec(raw);
  if (full) return `${full[1]!.toLowerCase()}:${full[2]!.toLowerCase()}:${full[3]!.toLowerCase()}.${full[4]}`;
  const short = PCI_SHORT.exec(raw);
  if (short) return `0000:${short[1]!.toLowerCase()}:${short[2]!.toLowerCase()}.${short[3]}`;
  return undefined;
};

export const isPciAddress = (raw: string): boolean => normalizePciAddress(raw) !== undefined;
export const isMdevUuid = (raw: string): boolean => MDEV_UUID.test(raw);

// one regex test on the hot path, the normalising transform after it (a refine + transform pair costs
// twice the regex work and halves parse throughput)
const PCI_ANY = /^(?:[0-9a-fA-F]{4,8}:)?[0-9a-fA-F]{2}:[0-1][0-9a-fA-F]\.[0-7]$/;
const DEVICE_ANY = /^(?:(?:[0-9a-fA-F]{4,8}:)?[0-9a-fA-F]{2}:[0-1][0-9a-fA-F]\.[0-7]|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$/;
const CANONICAL_PCI = /^[0-9a-f]{4,8}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]$/;

/** already canonical (the common case) costs one regex test, not a rebuild */
const toCanonicalDevice = (s: string): string => (CANONICAL_PCI.test(s) ? s : (normalizePciAddress(s) ?? s.toLowerCase()));

export const PciAddressSchema = z
  .string()
  .regex(PCI_ANY, { error: (iss) => `expected a PCI address like 0000:01:00.0, got ${describe(iss.input)}` })
  .transform(toCanonicalDevice)
  .brand<'PciAddress'>();
export type PciAddress = z.output<typeof PciAddressSchema>;

/**
 * A device the IOMMU core knows: a PCI function (normalised to `dddd:bb:dd.f`) or a mediated device
 * (its UUID, lower case). mdevs have no iommu_group of their own; the parent's rules apply.
 */
export const DeviceNameSchema = z
  .string()
  .regex(DEVICE_ANY, { error: (iss) => `expected a PCI address like 0000:01:00.0 or an mdev UUID, got ${describe(iss.input)}` })
  .transform(toCanonicalDevice)
  .brand<'DeviceName'>();
export type DeviceName = z.output<typeof DeviceNameSchema>;

/** /sys/kernel/iommu_groups/<N>: ida-allocated, non-negative */
export const GroupNumberSchema = z
  .number({ error: (iss) => `expected an IOMMU group number (integer ≥ 0), got ${describe(iss.input)}` })
  .int({ error: 'expected an IOMMU group number (integer ≥ 0), got a fraction' })
  .min(0, { error: 'expected an IOMMU group number (integer ≥ 0)' })
  .max(0x7fffffff, { error: 'IOMMU group number out of range' });
export type GroupNumber = number;

/** iommufd object ids (dev_id, ioas_id, hwpt_id, pt_id) are __u32 */
export const ObjectIdSchema = z
  .number({ error: (iss) => `expected an iommufd object id (u32), got ${describe(iss.input)}` })
  .int({ error: 'expected an iommufd object id (u32), got a fraction' })
  .min(0, { error: 'expected an iommufd object id (u32), got a negative number' })
  .max(0xffffffff, { error: 'expected an iommufd object id (u32), got a number above 4294967295' });
export type ObjectId = number;

/**
 * A handle the recorder gives an open file (an iommufd context, a VFIO device fd, a group fd, a legacy
 * container): unique on its host while the file is open. Collectors use `<pid>:<fd>` or the kernel
 * pointer; fd numbers alone are reused by the kernel, so they are not enough.
 */
export const HandleSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9:._@/-]{0,127}$/, {
    error: (iss) => `expected a file handle such as "4242:7" (letters, digits, ":._@/-", at most 128), got ${describe(iss.input)}`,
  })
  .brand<'Handle'>();
export type Handle = z.output<typeof HandleSchema>;

/** an fd number as the caller passed it in a `__s32` ioctl field (-1 and other invalid values included) */
export const FdNumberSchema = z
  .number({ error: 'expected an fd number as passed (a 32-bit signed integer)' })
  .int({ error: 'expected an fd number as passed (a 32-bit signed integer), got a fraction' })
  .min(-0x80000000, { error: 'an fd number is a 32-bit signed integer: at least -2147483648' })
  .max(0x7fffffff, { error: 'an fd number is a 32-bit signed integer: at most 2147483647' });

/**
 * /dev/vfio/devices/vfioN, or noiommu-vfioN for a device bound through iommufd without an IOMMU (7.3:
 * "vfio: Enable cdev noiommu mode under iommufd"; before 7.3 the noiommu cdev uAPI was blocked off)
 */
export const CdevNameSchema = z
  .string()
  .regex(/^(noiommu-)?vfio[0-9]+$/, { error: (iss) => `expected a VFIO cdev name such as vfio3 or noiommu-vfio3, got ${describe(iss.input)}` });

/** kernel driver names as in /sys/bus/pci/drivers */
export const DriverNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$/, { error: (iss) => `expected a kernel driver name such as vfio-pci, got ${describe(iss.input)}` });

export const HostNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/, { error: (iss) => `expected a host name (letters, digits, ".", "_", "-"), got ${describe(iss.input)}` })
  .brand<'HostName'>();
export type HostName = z.output<typeof HostNameSchema>;

/** the largest value every store holds: SQLite INTEGER and ClickHouse Int64/DateTime64(9) are signed 64-bit */
export const INT64_MAX = '9223372036854775807';

// a decimal string without leading zeros is at most INT64_MAX when it is shorter, or as long and not greater
const fitsInt64 = (s: string): boolean => s.length < INT64_MAX.length || (s.length === INT64_MAX.length && s <= INT64_MAX);

/**
 * nanoseconds as a decimal string: a JS number loses them after 2^53 (about 104 days of ns). At most
 * INT64_MAX (2262-04-11T23:47:16.854775807Z), the range of every store's 64-bit time column.
 */
export const NanosSchema = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,19})$/, {
    error: (iss) => `expected nanoseconds as a decimal string such as "1732400000123456789", got ${describe(iss.input)}`,
    abort: true,
  })
  .refine(fitsInt64, { error: (iss) => `nanoseconds out of range: at most ${INT64_MAX} (a signed 64-bit integer, 2262-04-11), got ${describe(iss.input)}` });

/** a 64-bit address or length as 0x-prefixed hex, exact where a number would not be */
export const Hex64Schema = z
  .string()
  .regex(/^0x[0-9a-fA-F]{1,16}$/, { error: (iss) => `expected a 64-bit hex value such as 0x0000000000100000, got ${describe(iss.input)}` })
  .transform((s) => `0x${s.slice(2).toLowerCase().padStart(16, '0')}`);

/** PCI vendor / device ids: 4 hex digits as in sysfs (`0x10de` or `10de`) */
export const Hex16Schema = z
  .string()
  .regex(/^(0x)?[0-9a-fA-F]{4}$/, { error: (iss) => `expected a 16-bit PCI id such as 10de, got ${describe(iss.input)}` })
  .transform((s) => s.replace(/^0x/, '').toLowerCase());

/**
 * PCI class code: 24 bits as in sysfs `class` (`0x030000`), or class + subclass only (`0300`) as
 * `lspci -nn` prints it, when the programming interface is unknown
 */
export const ClassCodeSchema = z
  .string()
  .regex(/^(0x)?([0-9a-fA-F]{4}|[0-9a-fA-F]{6})$/, { error: (iss) => `expected a PCI class such as 0x030000 (or 0300 without prog-if), got ${describe(iss.input)}` })
  .transform((s) => s.replace(/^0x/, '').toLowerCase());

export const PasidSchema = z
  .number({ error: (iss) => `expected a PASID (integer 0..0xfffff), got ${describe(iss.input)}` })
  .int()
  .min(0)
  .max(0xfffff, { error: 'PASID is 20 bits: at most 1048575' });
