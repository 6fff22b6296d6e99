import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import { readFile, writeFile } from 'node:fs/promises';
import { hostname, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ValidationError } from '../../../schemas/index.js';
import { createCollector } from '../../collector/collector.js';
import { followTracePipe } from '../../collector/followTracePipe.js';
import { createShipper } from '../../collector/shipper.js';
import { createLogger } from '../../shared/config/logger.js';
import type { EventSink } from '../../collector/sinks/eventSink.js';
import { createFileSink } from '../../collector/sinks/fileSink.js';
import { createHttpSink } from '../../collector/sinks/httpSink.js';
import { openSpool } from '../../collector/spool.js';
import { EXIT } from '../exitCodes.js';
import { intOption, type RegisterCommand } from '../program.js';

interface CollectCliOptions {
  host?: string;
  spool: string;
  spoolMax?: string;
  url?: string;
  token?: string;
  out?: string;
  brokers?: string;
  topic?: string;
  sysRoot: string;
  tracefs: string;
  udev?: boolean;
  udevInput?: string;
  trace?: boolean;
  enableTracepoints?: boolean;
  bpftrace?: string | boolean;
  bpftraceInput?: string;
  once?: boolean;
}

const DEFAULT_BT = fileURLToPath(new URL('../../../deploy/collector/iommutrail.bt', import.meta.url));
const TRACEPOINTS = ['add_device_to_group', 'remove_device_from_group', 'attach_device_to_domain', 'io_page_fault'];

/** Kafka's client is loaded only when asked for: a collector shipping over HTTP or to a file starts without it */
const createKafkaSinkLazily = async (brokers: string, topic: string | undefined, logger: ReturnType<typeof createLogger>): Promise<EventSink> => {
  const [{ createKafkaSink }, { DEFAULT_EVENTS_TOPIC }] = await Promise.all([import('../../collector/sinks/kafkaSink.js'), import('../../shared/kafka/kafkaClient.js')]);
  return createKafkaSink({ brokers: brokers.split(','), topic: topic ?? DEFAULT_EVENTS_TOPIC, logger });
};

/**
 * `iommutrail collect`: runs on a Linux host; snapshots sysfs, follows uevents / trace_pipe / bpftrace and
 * ships everything through a durable spool to the service (HTTP) or Kafka.
 */
export const registerCollect: RegisterCommand = (program, run) => {
  program
    .command('collect')
    .description('collect IOMMU topology, driver binds, iommu tracepoints and VFIO operations from this host into a durable spool, and ship them')
    .option('--host <name>', 'host name recorded in every event (default: hostname)')
    .option('--spool <file>', 'the spool (SQLite); survives restarts and outages', '/var/lib/iommutrail/spool.sqlite')
    .option('--spool-max <n>', 'most events held before sources are paused (back-pressure)', '100000')
    .option('--url <url>', 'the iommutrail service: events go to <url>/v1/events (token from --token or IOMMUTRAIL_TOKEN)')
    .option('--token <token>', 'bearer token with the ingest role')
    .option('--brokers <list>', 'send to Kafka instead (comma-separated bootstrap brokers)')
    .option('--out <file>', 'write the events as JSON Lines to this file (appended), device or - (stdout) instead, for a later `iommutrail ingest <file>`')
    .option('--topic <name>', 'Kafka topic (default: the events topic the service reads)')
    .option('--sys-root <dir>', 'sysfs root', '/sys')
    .option('--tracefs <dir>', 'tracefs root, or a tracefs instance of its own (<root>/instances/<name>: its own buffer, so other readers of the global trace_pipe lose nothing)', '/sys/kernel/tracing')
    .option('--udev', 'follow driver bind/unbind via `udevadm monitor --kernel --property --subsystem-match=pci`')
    .option('--udev-input <file>', 'read recorded `udevadm monitor --kernel --property` output from a file or - instead')
    .option('--trace', 'follow the iommu tracepoints from <tracefs>/trace_pipe')
    .option('--enable-tracepoints', 'write 1 to <tracefs>/events/iommu/<event>/enable first')
    .option('--bpftrace [script]', 'run the bpftrace program (default deploy/collector/iommutrail.bt) for VFIO operations')
    .option('--bpftrace-input <file>', 'read recorded bpftrace output from a file or - instead of running bpftrace')
    .option('--once', 'take a snapshot, read the given inputs to their end, ship, and exit')
    .action((opts: CollectCliOptions) =>
      run(async () => {
        const host = opts.host ?? hostname().split('.')[0]!;
        const sinks = [opts.url && '--url', opts.brokers && '--brokers', opts.out && '--out'].filter(Boolean);
        if (sinks.length !== 1) throw new ValidationError(`collect: give one of --url (the service), --brokers (Kafka) or --out (a JSON Lines file)${sinks.length > 1 ? `, not ${sinks.join(' and ')}` : ''}`);
        // every sysfs has bus/pci/devices, with or without an IOMMU: without it the snapshot would record a host
        // with no device and no IOMMU, which the fleet would then count as assessed (issue 18)
        if (!existsSync(join(opts.sysRoot, 'bus/pci/devices'))) {
          throw new ValidationError(`collect: --sys-root ${opts.sysRoot} is not a sysfs root (no ${join(opts.sysRoot, 'bus/pci/devices')})`, [{ path: '--sys-root', message: 'not a sysfs root' }]);
        }
        const logger = createLogger({ level: 'info', name: 'iommutrail-collector', destination: 2 });
        const spool = openSpool({ path: opts.spool, host, maxEvents: intOption('--spool-max', opts.spoolMax, 100_000) });
        const sink: EventSink = opts.out
          ? createFileSink({ path: opts.out })
          : opts.brokers
          ? await createKafkaSinkLazily(opts.brokers, opts.topic, logger)
          : createHttpSink({ url: opts.url!, ...((opts.token ?? process.env.IOMMUTRAIL_TOKEN) ? { token: (opts.token ?? process.env.IOMMUTRAIL_TOKEN)! } : {}) });
        // trace lines and uevents are merged by kernel time: trace_pipe on CLOCK_MONOTONIC, udevadm's clock
        // (written before the events are enabled: a new trace_clock empties the buffer)
        if (opts.enableTracepoints) await writeFile(join(opts.tracefs, 'trace_clock'), 'mono');
        const traceClockMono = Boolean(opts.trace) && (await readFile(join(opts.tracefs, 'trace_clock'), 'utf8').catch(() => '')).includes('[mono]');
        const collector = createCollector(spool, { sysRoot: opts.sysRoot, kernelRelease: release(), logger, traceClockMono });
        const shipper = createShipper(spool, sink, { logger });
        const children: ChildProcess[] = [];
        const sources: Promise<void>[] = [];
        const stopSources = new AbortController();
        const startChild = (cmd: string, args: string[]) => {
          const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
          child.on('error', (e) => logger.error({ cmd, err: e.message }, 'collector.source.failed'));
          children.push(child);
          return child.stdout!;
        };

        await collector.snapshot('start');
        if (opts.enableTracepoints) for (const tp of TRACEPOINTS) await writeFile(join(opts.tracefs, 'events/iommu', tp, 'enable'), '1');
        if (opts.udevInput) sources.push(collector.readUdevadm(opts.udevInput === '-' ? process.stdin : createReadStream(opts.udevInput)));
        else if (opts.udev) sources.push(collector.readUdevadm(startChild('udevadm', ['monitor', '--kernel', '--property', '--subsystem-match=pci'])));
        if (opts.trace) sources.push(collector.readTracePipe(Readable.from(followTracePipe(join(opts.tracefs, 'trace_pipe'), stopSources.signal))));
        if (opts.bpftraceInput) sources.push(collector.readBpftrace(opts.bpftraceInput === '-' ? process.stdin : createReadStream(opts.bpftraceInput)));
        else if (opts.bpftrace) sources.push(collector.readBpftrace(startChild('bpftrace', [typeof opts.bpftrace === 'string' ? opts.bpftrace : DEFAULT_BT])));

        if (opts.once) {
          await Promise.all(sources);
          await collector.snapshotsSpooled();
          const drained = await shipper.drain();
          await sink.close();
          spool.close();
          logger.info({ ...collector.stats, ...shipper.stats, left: drained ? 0 : 'some' }, 'collector.once.done');
          return drained ? EXIT.ok : EXIT.unavailable;
        }
        shipper.start();
        logger.info({ host, sink: sink.name, sources: { udev: Boolean(opts.udev || opts.udevInput), trace: Boolean(opts.trace), bpftrace: Boolean(opts.bpftrace || opts.bpftraceInput) } }, 'collector.ready');
        const onSnapshot = () => void collector.snapshot('requested').catch((e: unknown) => logger.error({ err: (e as Error).message }, 'collector.snapshot.failed'));
        process.on('SIGUSR1', onSnapshot);
        await new Promise<void>((resolve) => {
          process.once('SIGTERM', resolve);
          process.once('SIGINT', resolve);
        });
        process.off('SIGUSR1', onSnapshot);
        // what the kernel already sent is read first: the sources settle, the children end (their pipes are read
        // to EOF), trace_pipe is read until empty; then the spool is drained into the sink
        await collector.settle();
        for (const c of children) c.kill('SIGTERM');
        stopSources.abort();
        await Promise.race([Promise.allSettled(sources), new Promise((r) => setTimeout(r, 10_000).unref())]);
        await collector.snapshotsSpooled();
        await shipper.stop();
        const drained = await shipper.drain();
        await sink.close();
        spool.close();
        logger.info({ ...collector.stats, ...shipper.stats, left: drained ? 0 : 'some' }, 'collector.stopped');
        return EXIT.ok;
      }),
    );
};
