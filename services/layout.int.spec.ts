import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

// The README's architecture section and the real imports (issue 16: "the README's dependency picture matches the
// imports, and the lint rule enforces it"). Reads the tree and runs ESLint on the repository's own config.
const root = process.cwd();
const CORE_AND_SHELL = ['schemas', 'projections', 'replay', 'services'];
const isProduction = (path: string): boolean => !/\.spec\.ts$|\.features\.ts$|(^|\/)testing\//.test(path);

const tsFiles = (dir: string): string[] =>
  readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : tsFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });

/** every relative import (static, re-export, dynamic) of a file, resolved to a path from the repository root */
const importsOf = (path: string): string[] => {
  const text = readFileSync(join(root, path), 'utf8');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s+['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g)].map((m) => (m[1] ?? m[2])!);
  return specs.map((s) => relative(root, normalize(join(root, dirname(path), s))));
};

/** "services → replay → projections → schemas", as the README writes it: each layer may import those to its right */
const readmeLayers = (): string[] => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const architecture = readme.slice(readme.indexOf('## Architecture'), readme.indexOf('\n## ', readme.indexOf('## Architecture') + 1));
  const picture = /`(\w+(?:\s*→\s*\w+)+)`/.exec(architecture.replace(/\s*\n\s*/g, ' '));
  expect(picture, 'the README architecture section draws the dependency picture as `a → b → ...`').not.toBeNull();
  return picture![1]!.split('→').map((s) => s.trim());
};

describe('layout: the README architecture section against the imports', () => {
  const files = CORE_AND_SHELL.flatMap(tsFiles).filter(isProduction);

  it('given the README picture, when every production import is read, then each points to its own layer or one to its right', () => {
    const layers = readmeLayers();
    expect([...layers].sort()).toEqual([...CORE_AND_SHELL].sort());
    const wrong: string[] = [];
    for (const f of files) {
      const from = layers.indexOf(f.split('/')[0]!);
      for (const target of importsOf(f)) {
        const to = layers.indexOf(target.split('/')[0]!);
        if (to >= 0 && to < from) wrong.push(`${f} → ${target}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('given services/shared (what every program builds on), when its production imports are read, then none reaches a program', () => {
    const programs = readdirSync(join(root, 'services'), { withFileTypes: true }).filter((e) => e.isDirectory() && e.name !== 'shared').map((e) => `services/${e.name}/`);
    const wrong = files.filter((f) => f.startsWith('services/shared/')).flatMap((f) => importsOf(f).filter((t) => programs.some((p) => t.startsWith(p))).map((t) => `${f} → ${t}`));
    expect(wrong).toEqual([]);
  });

  it('given every production file, when its imports are read, then none is a test fixture (testing/, fixtures/)', () => {
    const wrong = files.flatMap((f) => importsOf(f).filter((t) => /(^|\/)(testing|fixtures)\//.test(t)).map((t) => `${f} → ${t}`));
    expect(wrong).toEqual([]);
  });

  it('given the folder tables (README.md, services/README.md), when set beside the tree, then each names every folder there is and no folder that is not', () => {
    // folders git ignores (node_modules/, dist/, test-results/, ...) are no part of the tree
    const ignored = new Set(
      readFileSync(join(root, '.gitignore'), 'utf8')
        .split('\n')
        .map((l) => l.trim().replace(/^\/|\/$/g, ''))
        .filter((l) => l !== '' && !l.startsWith('#') && !/[*/]/.test(l)),
    );
    const tracked = (dir: string): string[] =>
      readdirSync(join(root, dir), { withFileTypes: true })
        .filter((e) => e.isDirectory() && !e.name.startsWith('.') && !ignored.has(e.name))
        .map((e) => `${e.name}/`)
        .sort();
    // the first column of a markdown table: `name/`
    const tableFolders = (markdown: string): string[] => [...markdown.matchAll(/^\| `([\w-]+\/)` \|/gm)].map((m) => m[1]!).sort();
    expect(tableFolders(readFileSync(join(root, 'README.md'), 'utf8'))).toEqual(tracked('.'));
    expect(tableFolders(readFileSync(join(root, 'services/README.md'), 'utf8'))).toEqual(tracked('services'));
  });

  // the lint rule is what stops the next wrong import before review: each case is a file the config must judge
  const cases: readonly { readonly file: string; readonly code: string; readonly banned: boolean }[] = [
    { file: 'schemas/x.ts', code: "import { a } from '../projections/types.js';", banned: true },
    { file: 'schemas/x.ts', code: "import { a } from '../replay/variants.js';", banned: true },
    { file: 'projections/kernel/x.ts', code: "import { a } from '../../replay/variants.js';", banned: true },
    { file: 'replay/models/x.ts', code: "import { a } from '../../services/simulator/prng.js';", banned: true },
    { file: 'replay/x.ts', code: "import { readFileSync as a } from 'node:fs';", banned: true },
    { file: 'replay/x.ts', code: 'export const a = Date.now();', banned: true },
    { file: 'services/simulator/x.ts', code: "import { writeFileSync as a } from 'node:fs';", banned: true },
    { file: 'services/diagnose/x.ts', code: 'export const a = process.env;', banned: true },
    { file: 'services/collector/parsers/x.ts', code: 'export const a = Date.now();', banned: true },
    { file: 'services/collector/x.ts', code: "import { readFileSync as a } from 'node:fs';", banned: false },
    { file: 'services/replay/x.ts', code: "import { a } from '../../replay/testing/scenarios.js';", banned: true },
    { file: 'services/shared/x.ts', code: "import { a } from '../serve/server.js';", banned: true },
    { file: 'replay/models/x.ts', code: "import { a } from '../../projections/kernel/types.js';", banned: false },
    { file: 'projections/x.ts', code: "import { a } from '../schemas/index.js';", banned: false },
    { file: 'services/simulator/sinks.ts', code: "import { writeFileSync as a } from 'node:fs';", banned: false },
    { file: 'services/replay/x.ts', code: "import { readFileSync as a } from 'node:fs';", banned: false },
    { file: 'replay/testing/x.ts', code: "import { a } from '../../services/simulator/prng.js';", banned: false },
  ];

  it('given the ESLint config, when it lints one import of each kind, then it refuses exactly the ones the picture forbids', async () => {
    const eslint = new ESLint({ cwd: root });
    const judged: string[] = [];
    for (const c of cases) {
      const [result] = await eslint.lintText(`${c.code}\nexport const used = a;\n`, { filePath: join(root, c.file) });
      const refused = result!.messages.some((m) => ['no-restricted-imports', 'no-restricted-globals', 'no-restricted-properties'].includes(m.ruleId ?? ''));
      judged.push(`${c.file}: ${c.code} ${refused ? 'refused' : 'allowed'}`);
    }
    expect(judged).toEqual(cases.map((c) => `${c.file}: ${c.code} ${c.banned ? 'refused' : 'allowed'}`));
  });
});
