/**
 * How long a training run still needs, from the times its steps arrived: pure, so tests/eta.test.ts can
 * check it without a page. The first step of a stretch is left out (backends compile and allocate in it,
 * so it is several times slower than the rest), the pace is that of the last few steps (a checkpoint's
 * pause is smoothed, a change of pace followed), and the validation passes still to come are counted.
 */

/** Recent steps the pace averages over. */
export const ETA_WINDOW = 10;

/**
 * Seconds a step takes now. `times` are performance.now() values: the stretch's start, then the end of
 * each step. Before two steps have ended, `fallback` (the measured estimate's pace), or null.
 */
export function recentSecondsPerStep(times: readonly number[], fallback: number | null): number | null {
  // times[1] ends the first step: the intervals from there on are steps 2, 3, …
  if (times.length < 3) return fallback;
  const recent = times.slice(Math.max(1, times.length - 1 - ETA_WINDOW));
  return (recent.at(-1)! - recent[0]) / 1000 / (recent.length - 1);
}

export interface EtaInput {
  /** Steps done and in all. */
  step: number;
  totalSteps: number;
  epochs: number;
  secondsPerStep: number;
  /** Whether there are held-out examples (a validation pass at the end of each epoch). */
  validation: boolean;
  /** How long one validation pass takes (the last one, or the estimate's). */
  validationSeconds: number;
  /** Seconds since the last step ended: already spent on the next one. */
  sinceLastStep: number;
}

export function etaSeconds(input: EtaInput): number {
  const remaining = input.totalSteps - input.step;
  const stepsPerEpoch = input.totalSteps / Math.max(1, input.epochs);
  const passesLeft = input.validation
    ? Math.max(0, input.epochs - Math.floor(input.step / stepsPerEpoch))
    : 0;
  return Math.max(
    0,
    remaining * input.secondsPerStep + passesLeft * input.validationSeconds - input.sinceLastStep,
  );
}
