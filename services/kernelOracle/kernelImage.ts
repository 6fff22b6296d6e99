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
  /** `make headers_install` output: the uAPI of this release (6.1 has no linux/iommufd.h) */
  readonly headers: string;
}

export type KernelAvailability = { readonly available: true; readonly kernel: KernelImage } | { readonly available: false; readonly reason: string };

/** the Debian source packages the oracle builds and boots (deploy/kernel-oracle/kernels), newest first */
export const kernelSourcePackages = (file = join(ORACLE_DIR, 'kernels')): string[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));

/**
 * One cached oracle kernel (deploy/kernel-oracle/build-kernel.sh with KERNEL_SOURCE_PKG=`pkg`, KERNEL_CACHED_ONLY=1:
 * never builds here) and QEMU. `.ci/run` builds every listed image first through deploy/local/install-test-engines.sh.
 */
export const findKernel = async (pkg: string): Promise<KernelAvailability> => {
  try {
    await run('qemu-system-x86_64', ['--version']);
  } catch {
    return { available: false, reason: 'qemu-system-x86_64 is not installed (deploy/kernel-oracle/build-kernel.sh installs it)' };
  }
  try {
    const { stdout } = await run(join(ORACLE_DIR, 'build-kernel.sh'), [], { env: { ...process.env, KERNEL_CACHED_ONLY: '1', KERNEL_SOURCE_PKG: pkg } });
    const dir = stdout.trim();
    const bzImage = join(dir, 'bzImage');
    if (!existsSync(bzImage)) return { available: false, reason: `no bzImage in ${dir}` };
    return {
      available: true,
      kernel: {
        dir,
        bzImage,
        release: readFileSync(join(dir, 'kernelrelease'), 'utf8').trim(),
        sourceVersion: readFileSync(join(dir, 'source-version'), 'utf8').trim(),
        headers: join(dir, 'headers', 'include'),
      },
    };
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr?.trim();
    return { available: false, reason: stderr || `the oracle kernel from ${pkg} is not built (run KERNEL_SOURCE_PKG=${pkg} deploy/kernel-oracle/build-kernel.sh)` };
  }
};

/** every listed kernel, in the list's order, each available or with the reason it is not */
export const findKernels = async (): Promise<{ readonly pkg: string; readonly availability: KernelAvailability }[]> => {
  const out: { pkg: string; availability: KernelAvailability }[] = [];
  for (const pkg of kernelSourcePackages()) out.push({ pkg, availability: await findKernel(pkg) });
  return out;
};

/**
 * The uAPI headers the guest program is compiled against: those of a kernel that has iommufd (a VMM built on a
 * new system runs on an older kernel, which answers the newer calls with its own errno).
 */
export const guestUapiHeaders = (kernels: readonly KernelImage[]): string | null =>
  kernels.map((k) => k.headers).find((h) => existsSync(join(h, 'linux', 'iommufd.h'))) ?? null;
