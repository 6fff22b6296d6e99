import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventBuilder, type IommuEventInput } from '../../../schemas/index.js';
import { startTestService, type TestService } from '../testing/service.js';

const T0 = 1_763_870_000_000_000_000n; // 2025-11-23T03:53:20Z
const SECOND = 1_000_000_000n;
const NIC = '0000:03:00.0';
const CTX = '100:3';

/** a VMM building a nested guest on h19: NIC bound (dev_id 1), IOAS 2, nest parent 3, vIOMMU 4, nested hwpt 6 attached, then vDEVICE 5 at T0+9s */
const nestedGuest = (): IommuEventInput[] => {
  const b = createEventBuilder({ host: 'h19', source: 'vmm', startNs: T0, stepNs: SECOND });
  const qemu = { actor: { pid: 100, comm: 'qemu', vm: 'vm-a', tenant: 'blue' } };
  return [
    b.raw('TopologySnapshotTaken', {
      capabilities: { iommu: true, interruptRemapping: true, kernelRelease: '6.17.0' },
      groups: [{ group: 12, devices: [NIC] }],
      devices: [{ device: NIC, vendorId: '8086', deviceId: '1533', classCode: '020000', driver: 'vfio-pci', group: 12 }],
    }),
    b.raw('IommufdOpened', { ictx: CTX, outcome: { ok: true } }, qemu),
    b.raw('VfioDeviceOpened', { device: NIC, deviceFd: '100:4', cdev: 'vfio0', outcome: { ok: true } }, qemu),
    b.raw('VfioDeviceBindIommufdIssued', { device: NIC, deviceFd: '100:4', ictx: CTX, outcome: { ok: true, devId: 1 } }, qemu),
    b.raw('IommufdIoasAllocIssued', { ictx: CTX, outcome: { ok: true, ioasId: 2 } }, qemu),
    b.raw('IommufdHwptAllocIssued', { ictx: CTX, devId: 1, ptId: 2, flags: 1, outcome: { ok: true, hwptId: 3 } }, qemu),
    b.raw('IommufdViommuAllocIssued', { ictx: CTX, viommuType: 'arm-smmuv3', devId: 1, hwptId: 3, outcome: { ok: true, viommuId: 4 } }, qemu),
    b.raw('IommufdHwptAllocIssued', { ictx: CTX, devId: 1, ptId: 4, dataType: 'arm-smmuv3', outcome: { ok: true, hwptId: 6 } }, qemu),
    b.raw('VfioDeviceAttachPtIssued', { device: NIC, deviceFd: '100:4', ptId: 6, outcome: { ok: true, ptId: 6 } }, qemu),
    // seq 10 at T0+9s
    b.raw('IommufdVdeviceAllocIssued', { ictx: CTX, viommuId: 4, devId: 1, virtId: '0x10', outcome: { ok: true, vdeviceId: 5 } }, qemu),
  ];
};

describe('query API > iommufd objects (issue 19)', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService();
    const res = await svc.call('/v1/events', { method: 'POST', as: 'ingest', headers: { 'content-type': 'application/json' }, body: JSON.stringify(nestedGuest()) });
    expect(res.status).toBe(200);
  });
  afterAll(async () => {
    await svc.dispose();
  });

  const read = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await svc.call(path, { as: 'read' });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('issue 19: GET /v1/hosts/{host}/objects names each object with its owner and links, now', async () => {
    const { status, body } = await read('/v1/hosts/h19/objects');
    expect(status).toBe(200);
    expect(body['asOf']).toBe('now');
    const objects = body['objects'] as Record<string, Record<string, Record<string, unknown>>>;
    expect(objects['viommus']![`${CTX}/4`]).toMatchObject({ ictx: CTX, pid: 100, parentHwpt: 3, device: NIC });
    expect(objects['vdevices']![`${CTX}/5`]).toMatchObject({ viommuId: 4, device: NIC });
    expect(objects['contexts']![CTX]).toMatchObject({ pid: 100, vm: 'vm-a', tenant: 'blue', openedOnRecord: true });
  });

  it('issue 19: ?at= answers as of that time (before the vDEVICE existed), echoing the time in UTC', async () => {
    const { status, body } = await read(`/v1/hosts/h19/objects?at=${encodeURIComponent('2025-11-23T03:53:28Z')}`);
    expect(status).toBe(200);
    expect(body['asOfTime']).toBe('2025-11-23T03:53:28Z');
    const objects = body['objects'] as Record<string, Record<string, unknown>>;
    expect(objects['vdevices']).toEqual({});
    expect(Object.keys(objects['viommus']!)).toEqual([`${CTX}/4`]);
  });

  it('issue 19: GET /v1/hosts/{host}/devices/{device} says which page tables the device is nested under and its vDEVICE', async () => {
    const { status, body } = await read(`/v1/hosts/h19/devices/${NIC}`);
    expect(status).toBe(200);
    const objects = body['objects'] as { nestedUnder: { kind: string; id: number }[]; vdevices: { id: number; viommu: { id: number } | null }[] };
    expect(objects.nestedUnder.map((l) => `${l.kind} ${l.id}`)).toEqual(['hwpt 6', 'viommu 4', 'hwpt 3', 'ioas 2']);
    expect(objects.vdevices.map((v) => [v.id, v.viommu?.id])).toEqual([[5, 4]]);
  });

  it('issue 19: a bad ?at= is a 400 naming the parameter, an unknown host a 404', async () => {
    const bad = await read('/v1/hosts/h19/objects?at=yesterdayish');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('at');
    expect((await read('/v1/hosts/nobody/objects')).status).toBe(404);
  });
});
