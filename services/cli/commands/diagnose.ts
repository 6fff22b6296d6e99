import { readFile, writeFile } from 'node:fs/promises';
import { ValidationError } from '../../../schemas/index.js';
import { diagnose, formatDiagnosis, parseEvidence, toDiagnosisJson, toImportEvents } from '../../diagnose/index.js';
import { EXIT } from '../exitCodes.js';
import { intOption, type RegisterCommand } from '../program.js';

interface DiagnoseCliOptions {
  json?: boolean;
  group?: string;
  device?: string;
  rule?: string;
  emitEvents?: string;
  host?: string;
  all?: boolean;
}

const readInput = async (file: string): Promise<string> => {
  if (file !== '-') return readFile(file, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

/**
 * Exit codes of `diagnose`, within the README's table: 0 viable, 1 not viable (a finding), 2 unreadable
 * input, 5 unknown (the paste does not settle it; the report names the command that would).
 */
export const DIAGNOSE_EXIT = { viable: EXIT.ok, notViable: EXIT.finding, unknown: EXIT.undecided } as const;

/**
 * `iommutrail diagnose <file|->`: reads pasted evidence of a "group N is not viable" failure and says
 * which groups, devices and drivers it shows, whether the wanted group is viable, who blocks it and what
 * to run.
 */
export const registerDiagnose: RegisterCommand = (program, run) => {
  program
    .command('diagnose')
    .description('diagnose "vfio: group N is not viable" from pasted lspci / IOMMU group listings / ls of sysfs / kernel logs / VMM errors')
    .argument('<file>', 'a text file with the pasted output, or - for stdin')
    .addHelpText('after', '\nExit codes: 0 viable · 1 not viable · 2 unreadable input or usage · 5 unknown (the paste does not settle it; see "next")')
    .option('--json', 'print the diagnosis as JSON')
    .option('--all', 'show every group in full, not only the wanted ones')
    .option('--group <n>', 'the IOMMU group to pass through (default: the groups named in VMM errors)')
    .option('--device <bdf>', 'the PCI device to pass through, e.g. 0000:01:00.0')
    .option('--rule <rule>', 'viability rule: upstream (v5.19+), legacy (pre-v5.19) or auto', 'auto')
    .option('--emit-events <file>', 'also write the parsed facts as catalogue events (JSON Lines, source import)')
    .option('--host <name>', 'host name for --emit-events', 'imported')
    .action((file: string, opts: DiagnoseCliOptions) =>
      run(async () => {
        const rule = opts.rule ?? 'auto';
        if (rule !== 'auto' && rule !== 'upstream' && rule !== 'legacy') throw new ValidationError(`--rule: expected upstream, legacy or auto, got ${JSON.stringify(rule)}`);
        // an unreadable path is reported like in every command (exitCodes.ts: one line, exit 2)
        const text = await readInput(file);
        if (text.includes('\u0000')) {
          console.error(`iommutrail: ${file} is not text`);
          return EXIT.badInput;
        }
        const facts = parseEvidence(text);
        if (facts.formats.size === 0 && facts.groups.size === 0 && facts.errors.length === 0) {
          console.error(
            `iommutrail: nothing recognisable in ${file}: expected an IOMMU group listing, lspci -nnk, ls -l of /sys/kernel/iommu_groups/*/devices, kernel log lines or a VMM error`,
          );
          return EXIT.badInput;
        }
        const group = opts.group === undefined ? undefined : intOption('--group', opts.group, 0);
        const result = diagnose(facts, { rule, ...(group !== undefined ? { group } : {}), ...(opts.device ? { device: opts.device } : {}) });
        if (opts.emitEvents) {
          const { events, skipped } = toImportEvents(facts, { host: opts.host ?? 'imported', startNs: BigInt(Date.now()) * 1_000_000n });
          await writeFile(opts.emitEvents, events.map((e) => JSON.stringify(e)).join('\n') + (events.length > 0 ? '\n' : ''));
          console.error(`wrote ${events.length} import event(s) to ${opts.emitEvents}${skipped.length > 0 ? `; left out: ${skipped.join('; ')}` : ''}`);
        }
        if (opts.json) process.stdout.write(`${JSON.stringify(toDiagnosisJson(result), null, 2)}\n`);
        else process.stdout.write(formatDiagnosis(result, { all: opts.all ?? false }));
        return result.verdict === 'viable' ? DIAGNOSE_EXIT.viable : result.verdict === 'not-viable' ? DIAGNOSE_EXIT.notViable : DIAGNOSE_EXIT.unknown;
      }),
    );
};
