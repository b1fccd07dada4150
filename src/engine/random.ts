/**
 * A small seeded generator (mulberry32) whose whole state is one 32-bit number, so a training run can
 * store it in a checkpoint and continue the same random stream after a reload.
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** A 32-bit integer seed for tfjs ops that take one (dropout). */
  nextSeed(): number;
  state(): number;
}

export function createRng(seed: number): Rng {
  let s = seed >>> 0;
  const nextUint = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return {
    next: () => nextUint() / 4294967296,
    nextSeed: () => nextUint(),
    state: () => s,
  };
}

/** Fisher–Yates permutation of 0..n-1 drawn from `rng`. */
export function permutation(n: number, rng: Rng): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
