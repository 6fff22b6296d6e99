import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const require = createRequire(import.meta.url);

/** the package folder of a dependency, found the way Node resolves it from here */
const packageDir = (name: string, from = REPO): string => dirname(require.resolve(`${name}/package.json`, { paths: [from] }));

/**
 * The collector as the guest runs it: `collect` bundled into one ESM file (and a chunk for Kafka) (services/collector/guestEntry.ts, esbuild)
 * and, beside it in node_modules, what cannot be bundled: better-sqlite3 (its JS, its .node addon) and the two small
 * packages it loads the addon with. build-initramfs.sh adds node and udevadm with their shared libraries.
 */
export const buildGuestCollector = async (outDir: string): Promise<string> => {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  await run(join(REPO, 'node_modules/.bin/esbuild'), [
    join(REPO, 'services/collector/guestEntry.ts'),
    '--bundle',
    '--platform=node',
    '--format=esm',
    '--target=node20',
    '--external:better-sqlite3',
    // Kafka is loaded only for --brokers (collect.ts imports it lazily): the guest ships over a serial port
    '--external:kafkajs',
    '--minify',
    '--log-level=warning',
    // CommonJS dependencies bundled into ESM still call require() for Node's built-ins
    "--banner:js=import { createRequire as __iommutrailRequire } from 'node:module'; const require = __iommutrailRequire(import.meta.url);",
    // Kafka in a chunk of its own, loaded by its dynamic import: a bundle's external imports are otherwise hoisted
    '--splitting',
    `--outdir=${outDir}`,
    '--entry-names=collect',
    '--chunk-names=chunks/[name]-[hash]',
    '--out-extension:.js=.mjs',
  ]);
  const sqlite = packageDir('better-sqlite3');
  const target = join(outDir, 'node_modules', 'better-sqlite3');
  for (const part of ['package.json', 'lib', 'build/Release/better_sqlite3.node']) cpSync(join(sqlite, part), join(target, part), { recursive: true });
  const bindings = packageDir('bindings', sqlite);
  cpSync(bindings, join(outDir, 'node_modules', 'bindings'), { recursive: true });
  cpSync(packageDir('file-uri-to-path', bindings), join(outDir, 'node_modules', 'file-uri-to-path'), { recursive: true });
  return outDir;
};
