import { existsSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ValidationError } from '../../schemas/index.js';
import { TIME_FORMS, parseTimeNs } from '../shared/time.js';
import { EXIT, reportError } from './exitCodes.js';

/** a subcommand module: adds itself to the program; its action returns the exit code */
export type RegisterCommand = (program: Command, run: (action: () => Promise<number>) => Promise<void>) => void;

/**
 * `main(argv)` returns the exit code and never calls process.exit itself, so it is testable in process.
 * Each command's action goes through `run`, which maps thrown errors once (see exitCodes.ts).
 */
export const createMain =
  (commands: readonly RegisterCommand[]) =>
  async (argv: readonly string[]): Promise<number> => {
    let exitCode: number = EXIT.ok;
    const verbose = argv.includes('--verbose');
    const program = new Command('iommutrail')
      .description('event-sourced audit and replay of IOMMU group ownership')
      .option('--verbose', 'print stack traces on errors')
      .exitOverride()
      .configureOutput({ writeErr: (s) => process.stderr.write(s) })
      .showHelpAfterError('(run with --help for usage)');
    const run = async (action: () => Promise<number>): Promise<void> => {
      try {
        exitCode = await action();
      } catch (error) {
        exitCode = reportError(error, verbose);
      }
    };
    for (const register of commands) register(program, run);
    try {
      await program.parseAsync(argv, { from: 'user' });
    } catch (error) {
      if (error instanceof CommanderError) {
        // --help and --version are not failures
        if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return EXIT.ok;
        return EXIT.badInput;
      }
      return reportError(error, verbose);
    }
    return exitCode;
  };

/** parse an integer option, naming the option on failure */
export const intOption = (name: string, raw: string | undefined, fallback: number): number => {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new ValidationError(`${name}: expected an integer, got ${JSON.stringify(raw)}`);
  return n;
};

/**
 * A time option as ns since the epoch, by the one rule of the API ({@link parseTimeNs}): UTC unless a zone is
 * given (never the local zone), relative times allowed; names the option on failure.
 */
export const timeOption = (name: string, raw: string | undefined): bigint | undefined => {
  if (raw === undefined) return undefined;
  const ns = parseTimeNs(raw);
  if (ns === undefined) throw new ValidationError(`${name}: expected ${TIME_FORMS}, got ${JSON.stringify(raw)}`, [{ path: name, message: 'not a time' }]);
  return ns;
};

/**
 * A path the user gave must exist, the same for every command: exit 2 with `iommutrail: <path>: no such file or
 * directory` (what exitCodes.ts says for an ENOENT met later), never "not found" (3, which is for what a service
 * or a store does not hold).
 */
export const assertInputPath = (path: string): void => {
  if (!existsSync(path)) throw new ValidationError(`${path}: no such file or directory`, [{ path, message: 'no such file or directory' }]);
};
