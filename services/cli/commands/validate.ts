import { EXIT } from '../exitCodes.js';
import type { RegisterCommand } from '../program.js';
import { readHistoryFile } from '../../shared/files/historyFile.js';
import { createSequenceCheck, missingSeqsText } from '../../shared/files/sequenceCheck.js';

/** `iommutrail validate <file...>`: check history files against the catalogue, naming each bad line */
export const registerValidate: RegisterCommand = (program, run) => {
  program
    .command('validate')
    .description('validate JSON Lines history files against the event catalogue (exit 2 if any line is bad, 1 if a host misses a seq)')
    .argument('<files...>', 'history files (JSON Lines), or - for stdin')
    .option('--json', 'print a JSON summary')
    .action((files: string[], opts: { json?: boolean }) =>
      run(async () => {
        let valid = 0;
        let invalid = 0;
        const errors: string[] = [];
        const gaps: string[] = [];
        for (const file of files) {
          // a host's seqs must follow each other: a hole is an event removed from the history or lost
          const sequence = createSequenceCheck();
          for await (const line of readHistoryFile(file)) {
            if (line.ok) {
              valid += 1;
              sequence.observe(line.event, line.line);
            } else {
              invalid += 1;
              if (errors.length < 100) errors.push(line.error.message);
            }
          }
          gaps.push(...sequence.missing().map((m) => `${file}:${m.beforeLine}: ${missingSeqsText(m)}`));
        }
        if (opts.json) console.log(JSON.stringify({ valid, invalid, errors, sequenceGaps: gaps }));
        else {
          for (const e of errors) console.error(e);
          for (const g of gaps) console.error(`sequence gap: ${g}`);
          console.log(`${valid} valid, ${invalid} invalid event(s) in ${files.length} file(s)${gaps.length > 0 ? `; ${gaps.length} sequence gap(s)` : ''}`);
        }
        return invalid > 0 ? EXIT.badInput : gaps.length > 0 ? EXIT.finding : EXIT.ok;
      }),
    );
};
