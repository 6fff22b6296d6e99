/**
 * The benchmark harness contract. Every capability adds a figure module under bench/figures/ that
 * default-exports a {@link BenchFigure}; `npm run bench` (bench/run.ts) runs them all. Speed is never
 * asserted in tests: figures are measured and printed here.
 */
export interface BenchContext {
  /** 'quick' for the CI smoke run (small sizes, asserts nothing about speed), 'full' for real numbers */
  readonly mode: 'quick' | 'full';
  /** a fresh temporary folder for this figure's data */
  readonly tmpDir: string;
  readonly log: (line: string) => void;
}

export interface Measurement {
  /** what was measured, e.g. 'append (batched, durable)' */
  readonly label: string;
  readonly value: number;
  /** e.g. 'events/s', 'ms' */
  readonly unit: string;
  /** higher is better for rates, lower for latencies */
  readonly higherIsBetter: boolean;
  /** the reference measured in the same run: a raw limit or a peer */
  readonly reference: { readonly label: string; readonly value: number; readonly kind: 'raw-limit' | 'peer' };
  /** the issue's goal as a ratio to the reference, e.g. 0.7 for "70% of the raw limit" */
  readonly targetRatio?: number;
}

export interface BenchFigure {
  readonly name: string;
  /** the issue that asks for it */
  readonly issue: number;
  readonly sizes: { readonly quick: readonly number[]; readonly full: readonly number[] };
  /** run at one size (usually a number of events) and return its measurements */
  measure(size: number, ctx: BenchContext): Promise<readonly Measurement[]>;
}

export const defineFigure = (figure: BenchFigure): BenchFigure => figure;
