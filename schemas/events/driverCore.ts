import { z } from 'zod';
import { defineEvent } from '../defineEvent.js';
import { ErrnoSchema } from '../errno.js';
import { DeviceNameSchema, DriverNameSchema } from '../ids.js';

/**
 * how the bind was asked for: a write of the address to /sys/bus/pci/drivers/<drv>/bind (`bind`, the default
 * when absent) or to /sys/bus/pci/drivers_probe (`drivers_probe`: the driver core picks the driver, and
 * drivers/base/bus.c:drivers_probe_store turns any probe failure into -EINVAL)
 */
export const BindViaSchema = z.enum(['bind', 'drivers_probe']);

export const DriverBound = defineEvent(
  'DriverBound',
  1,
  { device: DeviceNameSchema, driver: DriverNameSchema, via: BindViaSchema.optional() },
  { family: 'driver', operation: true, doc: 'really_probe → driver_bound: uevent ACTION=bind with DRIVER= (protocol.md §2.2)' },
);

export const DriverUnbound = defineEvent(
  'DriverUnbound',
  1,
  // the unbind uevent carries no DRIVER= (dev->driver is already NULL): the name is known only from sysfs or
  // from a writer of drivers/<drv>/unbind
  { device: DeviceNameSchema, driver: DriverNameSchema.optional() },
  { family: 'driver', operation: true, doc: '__device_release_driver: uevent ACTION=unbind, no DRIVER, no MODALIAS' },
);

export const DriverBindRefused = defineEvent(
  'DriverBindRefused',
  1,
  { device: DeviceNameSchema, driver: DriverNameSchema, errno: ErrnoSchema, via: BindViaSchema.optional() },
  {
    family: 'driver',
    operation: true,
    doc: 'a bind that failed before probe, e.g. -EBUSY from iommu_device_use_default_domain in a user-owned group; no uevent',
  },
);

export const DriverUnbindRefused = defineEvent(
  'DriverUnbindRefused',
  1,
  { device: DeviceNameSchema, driver: DriverNameSchema, errno: ErrnoSchema },
  {
    family: 'driver',
    operation: true,
    doc: 'a write to /sys/bus/pci/drivers/<drv>/unbind that unbound nothing: drivers/base/bus.c unbind_store returns -ENODEV when the device is not bound to <drv>; no uevent',
  },
);

export const driverCoreEvents = [DriverBound, DriverUnbound, DriverBindRefused, DriverUnbindRefused] as const;
