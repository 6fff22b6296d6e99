import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { ValidationError } from '../../../schemas/index.js';
import { DEMO_FLEET_OPTIONS, createFleetSimulation, parseActivityMix, type SimulateFleetOptions } from '../../simulator/simulateFleet.js';
import { sendToHttp, sendToKafka, writeJsonLines, type SinkResult } from '../../simulator/sinks.js';
import { EXIT } from '../exitCodes.js';
import { intOption, timeOption, type RegisterCommand } from '../program.js';
import { createProgress } from '../progress.js';
import { DEFAULT_EVENTS_TOPIC } from '../../shared/kafka/kafkaClient.js';

interface SimulateOpts {
  seed?: string;
  hosts?: string;
  events?: string;
  mistakeRate?: string;
  traces: boolean;
  concurrency?: string;
  activity?: string;
  start?: string;
  demo?: boolean;
  out?: string;
  labels?: string;
  toUrl?: string;
  token?: string;
  toKafka?: string;
  topic?: string;
  batch?: string;
  rate?: string;
  quiet?: boolean;
  progress?: boolean;
}

const numberOption = (name: string, raw: string | undefined, fallback: number): number => {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new ValidationError(`${name}: expected a number, got ${JSON.stringify(raw)}`);
  return n;
};

/** `iommutrail simulate`: a seeded fleet's events as JSON Lines, or sent to the service or Kafka */
export const registerSimulate: RegisterCommand = (program, run) => {
  program
    .command('simulate')
    .description('generate a deterministic fleet history (JSON Lines on stdout or --out), or send it to the service or Kafka')
    .option('--seed <seed>', 'PRNG seed (number or text): same seed and options, same bytes', '1')
    .option('--hosts <n>', 'number of hosts', '10')
    .option('--events <n>', 'total number of events', '10000')
    .option('--mistake-rate <fraction>', 'share of VM launches with an operator mistake (labelled truth:mistake:*)', '0.05')
    .option('--no-traces', 'leave out iommu:* tracepoint events')
    .option('--concurrency <n>', 'concurrent episodes (VMs, rebinds, hotplugs) per host', '6')
    .option('--activity <mix>', 'how busy hosts are: fleet (70% idle, 25% busy, 5% heavy), heavy (every host, the default) or weights like idle=80,busy=15,heavy=5')
    .option('--start <time>', 'wall-clock start (ISO time or ns since the epoch)')
    .option('--demo', `the demo fleet preset (${DEMO_FLEET_OPTIONS.hosts} hosts, ${DEMO_FLEET_OPTIONS.events} events); other options override it`)
    .option('--out <file>', 'write JSON Lines to this file instead of stdout')
    .option('--labels <file>', 'write the ground truth beside the history: one JSON line per injected mistake (rule that must fire, host, group, device, from/until event)')
    .option('--to-url <url>', 'POST NDJSON batches to the service, e.g. http://127.0.0.1:8377/v1/events (the service\'s default port)')
    .option('--token <token>', 'bearer token for --to-url (default: $IOMMUTRAIL_TOKEN)')
    .option('--to-kafka <brokers>', 'publish to Kafka (comma-separated bootstrap brokers)')
    .option('--topic <topic>', 'Kafka topic for --to-kafka (default iommu.events)')
    .option('--batch <n>', 'events per request / produce batch', '1000')
    .option('--rate <events/s>', 'target rate for --to-url / --to-kafka (0 = as fast as possible)', '0')
    .option('--quiet', 'no summary and no progress on stderr')
    .option('--progress', 'progress lines on stderr even when it is not a terminal (a bar is shown on a terminal anyway)')
    .action((opts: SimulateOpts, cmd: { getOptionValueSource(name: string): string | undefined }) =>
      run(async () => {
        const explicit = (name: string) => cmd.getOptionValueSource(name) === 'cli';
        const base: SimulateFleetOptions = opts.demo ? DEMO_FLEET_OPTIONS : {};
        const seedRaw = opts.seed ?? '1';
        const startNs = timeOption('--start', opts.start);
        const options: SimulateFleetOptions = {
          ...base,
          ...(!opts.demo || explicit('seed') ? { seed: /^-?[0-9]+$/.test(seedRaw) ? Number(seedRaw) : seedRaw } : {}),
          ...(!opts.demo || explicit('hosts') ? { hosts: intOption('--hosts', opts.hosts, 10) } : {}),
          ...(!opts.demo || explicit('events') ? { events: intOption('--events', opts.events, 10_000) } : {}),
          ...(!opts.demo || explicit('mistakeRate') ? { mistakeRate: numberOption('--mistake-rate', opts.mistakeRate, 0.05) } : {}),
          ...(!opts.demo || explicit('concurrency') ? { concurrency: intOption('--concurrency', opts.concurrency, 6) } : {}),
          ...(!opts.demo || explicit('traces') ? { traces: opts.traces } : {}),
          ...(startNs === undefined ? {} : { startNs }),
          ...(opts.activity === undefined ? {} : { activity: parseActivityMix(opts.activity) }),
        };
        const batchSize = intOption('--batch', opts.batch, 1000);
        const rate = numberOption('--rate', opts.rate, 0);
        if ([opts.out, opts.toUrl, opts.toKafka].filter((x) => x !== undefined).length > 1)
          throw new ValidationError('choose one destination: --out, --to-url or --to-kafka');
        // validates the options before anything is opened
        const sim = createFleetSimulation(options);
        const events = sim.events();
        const started = performance.now();
        const progress = opts.quiet ? undefined : createProgress('simulate', options.events, { lines: opts.progress === true });
        const onProgress = progress ? { onProgress: (n: number) => progress.update(n) } : {};
        let result: SinkResult & { accepted?: number; duplicate?: number; rejected?: number };
        let where: string;
        if (opts.toUrl !== undefined) {
          const token = opts.token ?? process.env.IOMMUTRAIL_TOKEN;
          result = await sendToHttp(events, { url: opts.toUrl, batchSize, rate, ...onProgress, ...(token ? { token } : {}) });
          where = opts.toUrl;
        } else if (opts.toKafka !== undefined) {
          const { createKafkaPublisher } = await import('../../shared/kafka/producer.js');
          const brokers = opts.toKafka.split(',').map((b) => b.trim()).filter((b) => b.length > 0);
          if (brokers.length === 0) throw new ValidationError('--to-kafka: expected host:port[,host:port...]');
          const publisher = createKafkaPublisher({ brokers, ...(opts.topic ? { topic: opts.topic } : {}) });
          await publisher.start();
          try {
            result = await sendToKafka(events, { publisher, batchSize, rate, ...onProgress });
          } finally {
            await publisher.stop();
          }
          where = `kafka ${brokers.join(',')} topic ${opts.topic ?? DEFAULT_EVENTS_TOPIC}`;
        } else if (opts.out !== undefined && opts.out !== '-') {
          const file = createWriteStream(opts.out);
          result = await writeJsonLines(events, file, onProgress);
          file.end();
          await finished(file);
          where = opts.out;
        } else {
          result = await writeJsonLines(events, process.stdout, onProgress);
          where = 'stdout';
        }
        progress?.stop();
        const seconds = (performance.now() - started) / 1000;
        if (opts.labels !== undefined) {
          // a line per mistake: small beside the history, written once it is complete
          await writeFile(opts.labels, sim.labels().map((l) => `${JSON.stringify(l)}\n`).join(''));
        }
        if (!opts.quiet) {
          const http = result.accepted === undefined ? '' : `, ${result.accepted} accepted, ${result.duplicate} duplicate, ${result.rejected} rejected`;
          console.error(
            `simulated ${result.events} events from ${sim.hosts().length} hosts to ${where} in ${seconds.toFixed(2)} s ` +
              `(${Math.round(result.events / Math.max(seconds, 1e-9))} events/s, ${(result.bytes / 1e6).toFixed(1)} MB${http})`,
          );
        }
        return result.rejected !== undefined && result.rejected > 0 ? EXIT.finding : EXIT.ok;
      }),
    );
};
