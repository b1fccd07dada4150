/** How a run's training loss is reported from its steps' history. */

/**
 * A run's training loss: the mean loss of the steps in the epoch of `lastStep` (1-based, as StepMetrics
 * count), however many runs the history spans (a paused run resumed). A step with no tokens to learn from
 * (every completion truncated away) has no loss and does not count. NaN when no step does.
 */
export function lastEpochMeanLoss(
  history: readonly { step: number; loss: number; tokens?: number }[],
  stepsPerEpoch: number,
  lastStep = history.at(-1)?.step ?? 0,
): number {
  const epochOf = (step: number) => Math.floor((step - 1) / stepsPerEpoch);
  const losses = history
    .filter((h) => epochOf(h.step) === epochOf(lastStep) && h.step <= lastStep && h.tokens !== 0)
    .map((h) => h.loss);
  return losses.length ? losses.reduce((a, b) => a + b, 0) / losses.length : NaN;
}
