import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import YAML from 'yaml';
import { defineStage, type ProtocolDecider } from '../../replay/index.js';
import { ValidationError } from '../../schemas/index.js';

/** `--stage my-stage.yaml`: an entry that names a stage file rather than a variant */
export const isStageFile = (spec: string): boolean => /\.(ya?ml|json)$/i.test(spec);

/**
 * A stage file (YAML or JSON, replay/stages/README.md) read, parsed and compiled (replay/stages/dataStage.ts).
 * Every problem is one ValidationError line naming the file and the field: the CLI exits 2 with it.
 */
export const loadStageFile = (path: string): ProtocolDecider => {
  if (!existsSync(path)) throw new ValidationError(`${path}: no such file or directory`, [{ path, message: 'no such file' }]);
  if (!statSync(path).isFile()) throw new ValidationError(`${path}: is a directory, expected a stage file`, [{ path, message: 'not a file' }]);
  const json = extname(path).toLowerCase() === '.json';
  let data: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    data = json ? JSON.parse(text) : YAML.parse(text);
  } catch (e) {
    // the YAML parser's message ends its first line with the line and column, then a code frame: keep the first line
    throw new ValidationError(`${path}: not valid ${json ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]!.replace(/:$/, '')}`, [{ path, message: 'unreadable' }]);
  }
  return defineStage(data, path);
};
