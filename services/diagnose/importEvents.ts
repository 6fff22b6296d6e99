import { createEventBuilder, parseEvent, type IommuEvent, type IommuEventInput } from '../../schemas/index.js';
import type { Facts } from './evidence.js';

export interface ImportEventsOptions {
  /** the host the paste came from; the timeline keeps imports apart from live hosts @defaultValue 'imported' */
  readonly host?: string;
  /** wall-clock ns stamped on the first event (the shell passes the import time) */
  readonly startNs: bigint;
}

export interface ImportEventsResult {
  readonly events: IommuEvent[];
  /** facts that could not become events, with the reason */
  readonly skipped: string[];
}

/**
 * The parsed facts as catalogue events with source 'import': a TopologySnapshotTaken of what the paste
 * shows (labelled partial: it is not a full read of sysfs), a DriverBound per driver shown as bound, and
 * a PassthroughErrorReported per VMM error. Pure.
 */
export const toImportEvents = (facts: Facts, options: ImportEventsOptions): ImportEventsResult => {
  const builder = createEventBuilder({ host: options.host ?? 'imported', source: 'import', startNs: options.startNs, stepNs: 1n });
  const events: IommuEvent[] = [];
  const skipped: string[] = [];
  const emit = (input: IommuEventInput, what: string): void => {
    const r = parseEvent(input, what);
    if (r.ok) events.push(r.value);
    else skipped.push(`${what}: ${r.error.issues.map((i) => `${i.path} ${i.message}`).join('; ') || r.error.message}`);
  };

  const complete = [...facts.groups.values()].filter((g) => g.complete && g.members.size > 0).sort((a, b) => a.group - b.group);
  const devices = [];
  const labels = ['import:partial-snapshot', 'unknown:interruptRemapping'];
  let padded = false;
  for (const d of [...facts.devices.values()].sort((a, b) => a.device.localeCompare(b.device))) {
    if (!d.vendorId || !d.deviceId || !d.classCode) {
      skipped.push(`${d.device}: vendor/device/class not shown, left out of the snapshot`);
      continue;
    }
    if (!d.driver?.current) {
      skipped.push(`${d.device}: current driver not shown, left out of the snapshot`);
      continue;
    }
    // lspci -nn prints class and subclass only; the prog-if byte is unknown and recorded as 00
    if (d.classCode.length === 4) padded = true;
    devices.push({
      device: d.device,
      vendorId: d.vendorId,
      deviceId: d.deviceId,
      classCode: d.classCode.length === 4 ? `${d.classCode}00` : d.classCode,
      driver: d.driver.name,
      group: d.group?.group ?? null,
      ...(facts.requireDirect.has(d.device) ? { requireDirect: true } : {}),
    });
  }
  if (padded) labels.push('unknown:prog-if');
  if (complete.length > 0 || devices.length > 0) {
    emit(
      builder.raw(
        'TopologySnapshotTaken',
        {
          capabilities: {
            iommu: facts.groups.size > 0,
            // not in any pasted format: null says "not observed"
            interruptRemapping: null,
            ...(facts.kernelRelease ? { kernelRelease: facts.kernelRelease } : {}),
          },
          groups: complete.map((g) => ({ group: g.group, devices: [...g.members].sort() })),
          devices,
          partial: true,
        },
        { labels },
      ),
      'snapshot',
    );
  }
  for (const d of facts.devices.values()) {
    if (d.driver?.current && d.driver.name) emit(builder.raw('DriverBound', { device: d.device, driver: d.driver.name }, { labels: [`import:line:${d.driver.evidence.line}`] }), `DriverBound ${d.device}`);
  }
  for (const e of facts.errors) {
    emit(
      builder.raw(
        'PassthroughErrorReported',
        { origin: e.origin, message: e.message, ...(e.group !== undefined ? { group: e.group } : {}), ...(e.device ? { device: e.device } : {}) },
        { labels: [`import:line:${e.evidence.line}`] },
      ),
      `error on line ${e.evidence.line}`,
    );
  }
  return { events, skipped };
};
