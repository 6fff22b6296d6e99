import cliProgress from 'cli-progress';

/** a progress bar on a terminal, nothing when stderr is not a TTY (CI logs, pipes) */
export const createProgress = (label: string, total?: number) => {
  if (!process.stderr.isTTY) return { update: (_n: number) => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: total ? `${label} [{bar}] {percentage}% {value}/{total} {eta_formatted}` : `${label} {value} events`, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total ?? 0, 0);
  return { update: (n: number) => bar.update(n), stop: () => bar.stop() };
};
