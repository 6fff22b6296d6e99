import { ERRNO_NUMBERS, type ErrnoName } from '../../../schemas/index.js';
import { draftOf, ignoredBy, invalid, type ParseOutcome } from '../eventDraft.js';

const LINE = /^IOMMUTRAIL (.*?) comm=(.*)$/;
const ERRNO_BY_NUMBER = new Map<number, ErrnoName>(Object.entries(ERRNO_NUMBERS).map(([name, n]) => [n, name as ErrnoName]));

type Outcome = { ok: true } | { ok: false; errno: ErrnoName };

const outcomeOf = (ret: number): Outcome | string => {
  if (ret >= 0) return { ok: true };
  const errno = ERRNO_BY_NUMBER.get(-ret);
  return errno ? { ok: false, errno } : `errno ${-ret} is not in the catalogue`;
};

/**
 * One line of deploy/collector/iommutrail.bt output → an operation draft (source 'bpftrace'):
 * open/bind/attach/detach/close of a VFIO cdev fd, legacy SET_CONTAINER and GET_DEVICE_FD, and kernel
 * driver binds refused before probe. bpftrace's own messages (Attaching N probes...) are ignored.
 */
export const parseBpftraceLine = (raw: string): ParseOutcome => {
  const m = LINE.exec(raw.replace(/\r?\n$/, ''));
  if (!m) return ignoredBy('bpftrace.own-message');
  const f: Record<string, string> = {};
  for (const pair of m[1]!.split(' ')) {
    const eq = pair.indexOf('=');
    if (eq > 0) f[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const ret = Number(f.ret);
  const pid = Number(f.pid);
  if (!f.op || !f.ts || !/^\d+$/.test(f.ts) || !Number.isInteger(ret) || !Number.isInteger(pid)) return invalid(`bpftrace line without op/ts/pid/ret: ${JSON.stringify(raw.slice(0, 160))}`);
  const common = { source: 'bpftrace' as const, monoNs: BigInt(f.ts), actor: { pid, comm: m[2]!.trim().slice(0, 64) } };
  const outcome = outcomeOf(ret);
  if (typeof outcome === 'string') return invalid(`${f.op}: ${outcome}`);
  const deviceFd = f.file ? `file:${f.file}` : undefined;
  const need = (...keys: string[]): string | undefined => {
    const missing = keys.filter((k) => f[k] === undefined || f[k] === '');
    return missing.length > 0 ? `${f.op}: missing ${missing.join(', ')}` : undefined;
  };
  switch (f.op) {
    case 'hello':
      return ignoredBy('bpftrace.hello');
    case 'open': {
      if (!outcome.ok) return invalid(`open failed with ${outcome.errno} before the device was known`);
      const missing = need('dev', 'file');
      if (missing) return invalid(missing);
      return draftOf({ ...common, type: 'VfioDeviceOpened', data: { device: f.dev, deviceFd, outcome } });
    }
    case 'bind': {
      const missing = need('dev', 'file');
      if (missing) return invalid(missing);
      // the iommufd context: its kernel pointer once iommufd_device_bind ran, else the caller's fd number
      const ictx = f.ictx && f.ictx !== '0' ? `ictx:${f.ictx}` : `fd:${pid}:${f.iommufd ?? 'unknown'}`;
      const out = outcome.ok ? { ok: true, devId: Number(f.devid) } : outcome;
      // the raw `iommufd` argument (a negative or stale number is what the kernel refused)
      const iommufdFd = f.iommufd !== undefined && /^-?\d{1,10}$/.test(f.iommufd) ? { iommufdFd: Number(f.iommufd) } : {};
      return draftOf({ ...common, type: 'VfioDeviceBindIommufdIssued', data: { device: f.dev, deviceFd, ictx, ...iommufdFd, outcome: out } });
    }
    case 'attach': {
      const missing = need('dev', 'file', 'pt');
      if (missing) return invalid(missing);
      const out = outcome.ok ? { ok: true, ptId: Number(f.out_pt ?? f.pt) } : outcome;
      return draftOf({ ...common, type: 'VfioDeviceAttachPtIssued', data: { device: f.dev, deviceFd, ptId: Number(f.pt), outcome: out } });
    }
    case 'detach': {
      const missing = need('dev', 'file');
      if (missing) return invalid(missing);
      return draftOf({ ...common, type: 'VfioDeviceDetachPtIssued', data: { device: f.dev, deviceFd, outcome } });
    }
    case 'close': {
      const missing = need('dev', 'file');
      if (missing) return invalid(missing);
      return draftOf({ ...common, type: 'VfioDeviceClosed', data: { device: f.dev, deviceFd } });
    }
    case 'set_container': {
      const missing = need('vgroup', 'group', 'fd');
      if (missing) return invalid(missing);
      return draftOf({
        ...common,
        type: 'VfioGroupSetContainerIssued',
        data: { group: Number(f.group), groupFd: `vgroup:${f.vgroup}`, container: `fd:${pid}:${f.fd}`, containerKind: f.kind === 'iommufd' ? 'iommufd' : 'legacy', outcome },
      });
    }
    case 'get_device_fd': {
      const missing = need('vgroup', 'group', 'dev');
      if (missing) return invalid(missing);
      const out = outcome.ok ? { ok: true, deviceFd: f.file && f.file !== '0' ? `file:${f.file}` : `fd:${pid}:${ret}` } : outcome;
      return draftOf({ ...common, type: 'VfioGroupGetDeviceFdIssued', data: { group: Number(f.group), groupFd: `vgroup:${f.vgroup}`, device: f.dev, outcome: out } });
    }
    case 'bind_refused': {
      const missing = need('dev', 'driver');
      if (missing) return invalid(missing);
      if (outcome.ok) return ignoredBy('bpftrace.bind-not-refused');
      return draftOf({ ...common, type: 'DriverBindRefused', data: { device: f.dev, driver: f.driver, errno: outcome.errno } });
    }
    default:
      return invalid(`unknown op ${JSON.stringify(f.op)}`);
  }
};
