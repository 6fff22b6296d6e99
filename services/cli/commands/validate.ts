import { EXIT } from '../exitCodes.js';
import type { RegisterCommand } from '../program.js';
import { readHistoryFile } from '../../files/historyFile.js';

/** `iommutrail validate <file...>`: check history files against the catalogue, naming each bad line */
export const registerValidate: RegisterCommand = (program, run) => {
  program
    .command('validate')
    .description('validate JSON Lines history files against the event catalogue (exit 2 if any line is bad)')
    .argument('<files...>', 'history files (JSON Lines), or - for stdin')
    .option('--json', 'print a JSON summary')
    .action((files: string[], opts: { json?: boolean }) =>
      run(async () => {
        let valid = 0;
        let invalid = 0;
        const errors: string[] = [];
        for (const file of files) {
          for await (const line of readHistoryFile(file)) {
            if (line.ok) valid += 1;
            else {
              invalid += 1;
              if (errors.length < 100) errors.push(line.error.message);
            }
          }
        }
        if (opts.json) console.log(JSON.stringify({ valid, invalid, errors }));
        else {
          for (const e of errors) console.error(e);
          console.log(`${valid} valid, ${invalid} invalid event(s) in ${files.length} file(s)`);
        }
        return invalid > 0 ? EXIT.badInput : EXIT.ok;
      }),
    );
};
