/**
 * Kernel facts the projections and models take as data, with the reference's defaults (protocol.md §1.2).
 * Hosts may override them in their topology snapshot (capabilities.managedDmaDrivers).
 */

/**
 * Drivers with `driver_managed_dma = true`: binding them never counts toward owner_cnt, so a group stays
 * viable. Confirmed in driver sources per the reference; the vendor variants are listed separately
 * because the reference could not confirm each.
 */
export const CONFIRMED_MANAGED_DMA_DRIVERS = [
  'vfio-pci',
  'pci-stub',
  'pcieport',
  'vfio-platform',
  'vfio-amba',
  'vfio-fsl-mc',
  'vfio-cdx',
  'pds-vfio-pci',
  'nvgrace-gpu-vfio-pci',
] as const;

/** vfio variant drivers the reference marks [UNCONFIRMED individually]; counted as managed by default */
export const UNCONFIRMED_MANAGED_DMA_DRIVERS = ['mlx5-vfio-pci', 'hisi-acc-vfio-pci', 'virtio-vfio-pci', 'qat-vfio-pci'] as const;

export const DEFAULT_MANAGED_DMA_DRIVERS: readonly string[] = [...CONFIRMED_MANAGED_DMA_DRIVERS, ...UNCONFIRMED_MANAGED_DMA_DRIVERS];

/** pre-v5.19 `vfio_driver_allowed[]`; bridges (non-normal header) and vfio drivers were also allowed */
export const LEGACY_ALLOWED_DRIVERS: readonly string[] = ['pci-stub'];

/** drivers whose binding makes a device a VFIO user-space device (cdev or legacy group) */
export const isVfioDriverName = (driver: string): boolean => driver.startsWith('vfio') || driver.includes('vfio-pci') || driver.includes('vfio_pci');
