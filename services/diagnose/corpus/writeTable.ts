// writes the corpus table into corpus/README.md: npx tsx services/diagnose/corpus/writeTable.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { corpusRows } from './loadCorpus.js';
import { toCorpusTable, withCorpusTable } from '../corpusTable.js';

const readme = fileURLToPath(new URL('./README.md', import.meta.url));
writeFileSync(readme, withCorpusTable(readFileSync(readme, 'utf8'), toCorpusTable(corpusRows())));
