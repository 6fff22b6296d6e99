import cliProgress from 'cli-progress';

/**
 * Progress of a long run on stderr: a bar on a terminal; with `lines` (a log, a pipe, CI) one line at each tenth
 * of a known total (no clock, so the same run prints the same lines); nothing otherwise.
 */
export const createProgress = (label: string, total?: number, options: { readonly lines?: boolean } = {}) => {
  if (!process.stderr.isTTY) {
    if (!options.lines || !total) return { update: (_n: number) => {}, stop: () => {} };
    let shown = 0;
    const show = (n: number) => {
      const tenth = Math.min(10, Math.floor((n * 10) / total));
      if (tenth <= shown) return;
      shown = tenth;
      console.error(`${label}: ${n} of ${total} (${tenth * 10}%)`);
    };
    return { update: show, stop: () => {} };
  }
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: total ? `${label} [{bar}] {percentage}% {value}/{total} {eta_formatted}` : `${label} {value} events`, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total ?? 0, 0);
  return { update: (n: number) => bar.update(n), stop: () => bar.stop() };
};
