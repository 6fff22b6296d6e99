import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ORACLE_DIR } from './topologies.js';

const run = promisify(execFile);

export interface KernelImage {
  readonly dir: string;
  readonly bzImage: string;
  readonly release: string;
  readonly sourceVersion: string;
}

export type KernelAvailability = { readonly available: true; readonly kernel: KernelImage } | { readonly available: false; readonly reason: string };

/**
 * The cached oracle kernel (deploy/kernel-oracle/build-kernel.sh, KERNEL_CACHED_ONLY=1: never builds here)
 * and QEMU. `.ci/run` builds the image first through deploy/local/install-test-engines.sh.
 */
export const findKernel = async (): Promise<KernelAvailability> => {
  try {
    await run('qemu-system-x86_64', ['--version']);
  } catch {
    return { available: false, reason: 'qemu-system-x86_64 is not installed (deploy/kernel-oracle/build-kernel.sh installs it)' };
  }
  try {
    const { stdout } = await run(join(ORACLE_DIR, 'build-kernel.sh'), [], { env: { ...process.env, KERNEL_CACHED_ONLY: '1' } });
    const dir = stdout.trim();
    const bzImage = join(dir, 'bzImage');
    if (!existsSync(bzImage)) return { available: false, reason: `no bzImage in ${dir}` };
    return {
      available: true,
      kernel: { dir, bzImage, release: readFileSync(join(dir, 'kernelrelease'), 'utf8').trim(), sourceVersion: readFileSync(join(dir, 'source-version'), 'utf8').trim() },
    };
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr?.trim();
    return { available: false, reason: stderr || 'the oracle kernel is not built (run deploy/kernel-oracle/build-kernel.sh)' };
  }
};
