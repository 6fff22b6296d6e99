import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { diagnose, type Diagnosis } from '../diagnose.js';
import { parseEvidence } from '../parseEvidence.js';
import type { CorpusCase, CorpusIndex } from '../corpusTable.js';

const here = (name: string): string => fileURLToPath(new URL(`./${name}`, import.meta.url));

export const readCorpusIndex = (): CorpusIndex => JSON.parse(readFileSync(here('index.json'), 'utf8')) as CorpusIndex;

/** every corpus case with the diagnosis of its paste (default options: what a user gets by pasting it) */
export const corpusRows = (): { c: CorpusCase; d: Diagnosis }[] =>
  readCorpusIndex().cases.map((c) => ({ c, d: diagnose(parseEvidence(readFileSync(here(`${c.case}.txt`), 'utf8'))) }));
