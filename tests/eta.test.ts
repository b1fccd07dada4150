// The ETA during a run (src/ui/state/eta.ts): the slow first step left out, the recent pace, validation
// passes counted.
import { describe, expect, it } from 'vitest';
import { ETA_WINDOW, etaSeconds, recentSecondsPerStep } from '../src/ui/state/eta';

/** performance.now() values: a start at 0, then each step's end, from step durations in seconds. */
const timesOf = (durations: number[]) =>
  durations.reduce<number[]>((t, d) => [...t, t.at(-1)! + d * 1000], [0]);

describe('the ETA', () => {
  it('leaves out the first step, which compiles, and uses the estimate until a second step ends', () => {
    expect(recentSecondsPerStep(timesOf([]), 0.5)).toBe(0.5);
    expect(recentSecondsPerStep(timesOf([10]), 0.5)).toBe(0.5);
    expect(recentSecondsPerStep(timesOf([10]), null)).toBeNull();
    // A 10 s first step and 1 s steps after it: 1 s a step, not (10 + 1 + 1) / 3.
    expect(recentSecondsPerStep(timesOf([10, 1, 1]), 0.5)).toBeCloseTo(1, 9);
  });

  it('follows the recent pace: the last ETA_WINDOW steps', () => {
    const durations = [5, ...Array(20).fill(2), ...Array(ETA_WINDOW).fill(1)];
    expect(recentSecondsPerStep(timesOf(durations), null)).toBeCloseTo(1, 9);
    // One checkpoint pause among them is smoothed, not taken as the pace.
    const paused = [5, ...Array(ETA_WINDOW - 1).fill(1), 3];
    expect(recentSecondsPerStep(timesOf(paused), null)).toBeCloseTo(1.2, 9);
  });

  it('counts the remaining steps and validation passes, less the time already spent on the next step', () => {
    const base = {
      totalSteps: 40,
      epochs: 4,
      secondsPerStep: 2,
      validation: true,
      validationSeconds: 5,
      sinceLastStep: 0,
    };
    // Step 15 of 40 (epoch 2 of 4, 10 steps each): 25 steps and 3 passes left (after epochs 2, 3 and 4).
    expect(etaSeconds({ ...base, step: 15 })).toBe(25 * 2 + 3 * 5);
    expect(etaSeconds({ ...base, step: 20 })).toBe(20 * 2 + 2 * 5);
    expect(etaSeconds({ ...base, step: 15, validation: false })).toBe(50);
    expect(etaSeconds({ ...base, step: 15, sinceLastStep: 1.5 })).toBe(63.5);
    expect(etaSeconds({ ...base, step: 40 })).toBe(0);
    expect(etaSeconds({ ...base, step: 39, sinceLastStep: 60 })).toBe(0);
  });
});
