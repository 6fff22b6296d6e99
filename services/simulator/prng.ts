/**
 * A small seeded PRNG (sfc32, seeded through splitmix32) and the draws the simulator needs. Math.random is
 * never used: the same seed must give the same fleet, byte for byte.
 */
export interface Rng {
  /** uniform in [0, 1) */
  next(): number;
  /** integer in [min, max] inclusive */
  int(min: number, max: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  /** pick by weight: [[item, weight], ...] */
  weighted<T>(items: readonly (readonly [T, number])[]): T;
  /** exponential with this mean (for waiting times) */
  exp(mean: number): number;
  /** an independent stream derived from this one and a label (so adding a host does not shift the others) */
  fork(label: string): Rng;
  /** the seed `fork(label)` would give its stream (`createRng(forkSeed(label))` is that stream): 4 bytes to keep */
  forkSeed(label: string): number;
  /** the generator's position: `resumeRng(state())` goes on with the same draws */
  state(): RngState;
}

/** sfc32's four words: all a stream needs to go on where it stopped */
export type RngState = readonly [number, number, number, number];

const splitmix32 = (seed: number) => () => {
  seed = (seed + 0x9e3779b9) | 0;
  let z = seed;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
};

const hash32 = (s: string, h = 2166136261): number => {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
};

export const createRng = (seed: number | string): Rng => {
  const init = splitmix32(typeof seed === 'number' ? seed >>> 0 ^ Math.floor(seed / 2 ** 32) : hash32(seed));
  return resumeRng([init(), init(), init(), init()]);
};

/**
 * sfc32 as a class: its methods live on the prototype, so a stream costs four numbers, not a closure per draw
 * kind (a fleet makes and resumes hundreds of thousands of them)
 */
class Sfc32 implements Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  constructor([a, b, c, d]: RngState) {
    this.#a = a;
    this.#b = b;
    this.#c = c;
    this.#d = d;
  }
  next(): number {
    const a = this.#a;
    const b = this.#b;
    const c = this.#c;
    const d = this.#d;
    const t = (((a + b) | 0) + d) | 0;
    this.#d = (d + 1) | 0;
    this.#a = b ^ (b >>> 9);
    this.#b = (c + (c << 3)) | 0;
    const rotated = (c << 21) | (c >>> 11);
    this.#c = (rotated + t) | 0;
    return (t >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }
  weighted<T>(items: readonly (readonly [T, number])[]): T {
    const total = items.reduce((s, [, w]) => s + w, 0);
    let x = this.next() * total;
    for (const [item, w] of items) {
      x -= w;
      if (x < 0) return item;
    }
    return items[items.length - 1]![0];
  }
  exp(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }
  fork(label: string): Rng {
    return createRng(this.forkSeed(label));
  }
  forkSeed(label: string): number {
    return hash32(label, (this.next() * 4294967296) >>> 0);
  }
  state(): RngState {
    return [this.#a, this.#b, this.#c, this.#d];
  }
}

/** a stream that goes on from a position `Rng.state()` returned */
export const resumeRng = (state: RngState): Rng => new Sfc32(state);
