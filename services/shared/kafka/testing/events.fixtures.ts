import { createEventBuilder, type IommuEvent } from '../../../../schemas/index.js';

/**
 * `perHost` valid events for each of `hosts` hosts, interleaved round-robin (as a fleet publishes them), each
 * host's seq counting up from 1: a DriverBound/DriverUnbound pair cycle that the catalogue accepts.
 */
export const fleetEvents = (hosts: number, perHost: number, prefix = 'host'): IommuEvent[] => {
  const builders = Array.from({ length: hosts }, (_, h) => createEventBuilder({ host: `${prefix}-${h}` }));
  const events: IommuEvent[] = [];
  for (let i = 0; i < perHost; i += 1) {
    for (const b of builders) {
      events.push(i % 2 === 0 ? b.event('DriverBound', { device: '0000:03:00.0', driver: 'vfio-pci' }) : b.event('DriverUnbound', { device: '0000:03:00.0' }));
    }
  }
  return events;
};
