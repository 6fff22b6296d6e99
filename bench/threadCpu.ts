import { readdirSync, readFileSync } from 'node:fs';

/** CPU time (ms) of this process's JS thread and of the embedded engine's merge threads */
export interface ThreadCpu {
  readonly main: number;
  readonly merges: number;
}

// Linux clock ticks (USER_HZ): 100 on every architecture Node supports there
const MS_PER_TICK = 10;

const ticksOf = (stat: string): number => {
  // the fields after the command name, which may itself hold spaces and parentheses
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
};

/**
 * Issue 23: where a figure's process CPU goes, from /proc (Linux; undefined elsewhere): the JS thread, and chdb's merge
 * pool (threads named MergeMutate…), which merges parts in the background whichever side's insert made them. The rest
 * of the process's CPU (process.cpuUsage less these) is the engine's inserts, V8's GC and compiler helpers, and
 * threads that have ended. In 10 ms ticks: read over a run's phases, not one call.
 */
export const threadCpu = (): ThreadCpu | undefined => {
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return undefined;
  }
  let main = 0;
  let merges = 0;
  for (const tid of tasks) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    if (Number(tid) === process.pid) main += ticksOf(stat) * MS_PER_TICK;
    else if (stat.slice(stat.indexOf('(') + 1).startsWith('MergeMutate')) merges += ticksOf(stat) * MS_PER_TICK;
  }
  return { main, merges };
};
