import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A small real filesystem that can be filled: a tmpfs mounted on a fresh folder. Mounting needs root (CI runs
 * as root); gate the suite on {@link tmpfsAvailability} with `describeWithEngine`.
 */
export interface SmallFilesystem {
  readonly dir: string;
  /** takes every free block (one file); returns a function that gives the space back */
  fill(): () => void;
  unmount(): void;
}

export const tmpfsAvailability = (): { available: boolean; reason?: string } => {
  if (process.getuid?.() !== 0) return { available: false, reason: 'mounting a tmpfs needs root' };
  try {
    mountTmpfs(64 * 1024).unmount();
    return { available: true };
  } catch (e) {
    return { available: false, reason: `mount -t tmpfs failed: ${(e as Error).message}` };
  }
};

export const mountTmpfs = (bytes: number): SmallFilesystem => {
  const dir = mkdtempSync(join(tmpdir(), 'iommutrail-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    dir,
    fill: () => {
      const filler = join(dir, 'filler');
      try {
        writeFileSync(filler, Buffer.alloc(bytes));
      } catch {
        // ENOSPC: the filler took every free block it could
      }
      return () => rmSync(filler, { force: true });
    },
    unmount: () => {
      // lazy: a test that failed with files still open must not leave the mount behind
      execFileSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
};
