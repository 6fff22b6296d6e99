import { draftOf, ignoredBy, invalid, secondsToNs, type ParseOutcome } from '../eventDraft.js';

/** a kernel uevent: ACTION, DEVPATH and the KEY=VALUE environment (lib/kobject_uevent.c) */
export interface Uevent {
  readonly action: string;
  readonly devpath: string;
  readonly env: Readonly<Record<string, string>>;
  /** the monotonic time udevadm printed in `KERNEL[1234.567890]`, when read from udevadm */
  readonly monoNs?: bigint;
}

// KERNEL[12345.678901] bind     /devices/pci0000:00/0000:00:01.0/0000:01:00.0 (pci)
const HEADER = /^KERNEL\[(\d+\.\d+)\]\s+(\S+)\s+(\S+)\s+\((\S+)\)\s*$/;
const PROPERTY = /^([A-Z0-9_]+)=(.*)$/;

/**
 * Incremental reader of `udevadm monitor --kernel --property` output: feed it lines, it returns each event
 * when its block ends (a blank line). The banner ("monitor will print...") and UDEV blocks are skipped.
 */
export const createUdevadmParser = () => {
  let header: { monoNs: bigint; action: string; devpath: string } | undefined;
  let env: Record<string, string> = {};
  const finish = (): Uevent | undefined => {
    const h = header;
    header = undefined;
    const e = env;
    env = {};
    if (!h) return undefined;
    return { action: e.ACTION ?? h.action, devpath: e.DEVPATH ?? h.devpath, env: e, monoNs: h.monoNs };
  };
  return {
    push(line: string): Uevent | undefined {
      const text = line.replace(/\r?\n$/, '');
      if (text.trim() === '') return finish();
      const h = HEADER.exec(text);
      if (h) {
        const previous = finish();
        header = { monoNs: secondsToNs(h[1]!), action: h[2]!, devpath: h[3]! };
        return previous;
      }
      if (!header) return undefined;
      const p = PROPERTY.exec(text);
      if (p) env[p[1]!] = p[2]!;
      return undefined;
    },
    /** the last event when the stream ends without a blank line */
    end: (): Uevent | undefined => finish(),
  };
};

/**
 * A raw netlink uevent datagram (`ACTION@DEVPATH\0KEY=VAL\0...`, NETLINK_KOBJECT_UEVENT group 1). udev's
 * own re-broadcasts (group 2) start with "libudev\0" and are ignored. Node has no netlink sockets without a
 * native addon, so the collector reads udevadm; this parser serves captures and an addon-based reader.
 */
export const parseNetlinkUevent = (datagram: Uint8Array): Uevent | undefined => {
  const text = Buffer.from(datagram).toString('utf8');
  if (text.startsWith('libudev\0')) return undefined;
  const [head, ...fields] = text.split('\0');
  const at = head?.indexOf('@') ?? -1;
  if (!head || at <= 0) return undefined;
  const env: Record<string, string> = {};
  for (const f of fields) {
    const eq = f.indexOf('=');
    if (eq > 0) env[f.slice(0, eq)] = f.slice(eq + 1);
  }
  return { action: env.ACTION ?? head.slice(0, at), devpath: env.DEVPATH ?? head.slice(at + 1), env };
};

/**
 * A PCI bind/unbind uevent → DriverBound / DriverUnbound (protocol.md §2.2). `bind` carries DRIVER=;
 * `unbind` never does (dev->driver is already NULL), so the name comes from `lastDriver` (what the
 * collector last saw bound) when known. Other actions are not driver events.
 */
export const ueventToDraft = (u: Uevent, lastDriver?: (device: string) => string | undefined): ParseOutcome => {
  if (u.env.SUBSYSTEM !== undefined && u.env.SUBSYSTEM !== 'pci') return ignoredBy('uevent.not-pci');
  if (u.action === 'add' || u.action === 'remove') return ignoredBy('uevent.pci-add-remove-takes-a-snapshot');
  if (u.action !== 'bind' && u.action !== 'unbind') return ignoredBy('uevent.pci-action-moves-no-driver');
  const device = u.env.PCI_SLOT_NAME ?? u.devpath.split('/').pop() ?? '';
  const common = { source: 'udev' as const, ...(u.monoNs !== undefined ? { monoNs: u.monoNs } : {}), ...(u.env.SEQNUM ? { labels: [`uevent-seqnum:${u.env.SEQNUM}`] } : {}) };
  if (u.action === 'bind') {
    if (!u.env.DRIVER) return invalid(`bind uevent for ${device} without DRIVER=`);
    return draftOf({ ...common, type: 'DriverBound', data: { device, driver: u.env.DRIVER } });
  }
  const driver = lastDriver?.(device);
  return draftOf({ ...common, type: 'DriverUnbound', data: { device, ...(driver ? { driver } : {}) } });
};
