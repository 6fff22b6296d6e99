import { describe, it } from 'vitest';
import { createFleetProjection } from './fleetProjection.js';
import { ProjectionSpecification } from './testing/projectionSpecification.js';
import { NIC, createScenario } from './testing/scenarioEvents.js';

// issue 17, assert 2: what the collector's signals cannot show (a DMA ownership claim, the domain kind)
const spec = ProjectionSpecification.for(createFleetProjection());

describe('Projection > owner and domain kind known only from recorded calls', () => {
  it('kernel oracle assert 2: a host known only from collector signals says its owner is unknown, not "no owner"', () => {
    const s = createScenario();
    // sysfs snapshot, a driver bind seen as a uevent and an attach trace: none of them shows a claim
    const signals = [s.topology(), s.driverUnbound(NIC), s.driverBound(NIC, 'vfio-pci'), s.traceAttach(NIC)];
    spec.given(signals).thenGroup(12, { userOwner: null, ownerKnown: false, domain: { kind: 'default' } });
  });

  it('given a recorded VFIO or iommufd call on the host, when folded, then owner and domain are known, for its groups and for groups seen later', () => {
    const FA = 'qemu:3';
    const a = createScenario();
    spec.given([a.topology(), a.iommufdOpened(FA)]).thenGroup(12, { userOwner: null, ownerKnown: true });
    const b = createScenario();
    spec.given([b.iommufdOpened(FA), b.topology()]).thenGroup(12, { userOwner: null, ownerKnown: true });
    const c = createScenario();
    spec.given([c.topology(), c.iommufdOpened(FA), c.open(NIC, 'q:5'), c.bind(NIC, 'q:5', FA, 1)]).thenGroup(12, { userOwner: { kind: 'iommufd', handle: FA }, ownerKnown: true, domain: { kind: 'blocking' } });
  });
});
