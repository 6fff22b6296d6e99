// child process for the kill -9 test: appends forever and prints each acknowledged (committed) batch
import { openSpool } from '../spool.js';

const [path, host] = process.argv.slice(2) as [string, string];
const spool = openSpool({ path, host, maxEvents: 1_000_000 });
let n = 0;
for (;;) {
  const drafts = Array.from({ length: 10 }, () => ({ type: 'DriverBound' as const, source: 'udev' as const, data: { device: `0000:01:00.${n++ % 8}`, driver: 'vfio-pci' } }));
  const r = spool.append(drafts);
  if (!r.ok) throw new Error('spool unexpectedly full');
  process.stdout.write(`ack ${r.events.map((e) => `${e.seq}:${e.id}`).join(',')}\n`);
  await new Promise((resolve) => setImmediate(resolve));
}
