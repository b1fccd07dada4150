/**
 * A saved run's setup as this version reads it, and the split its adapter keeps. Runs saved before the
 * recomputation of layers had its own name stored that choice as `checkpoint`; "checkpoint" now means only a
 * saved training state.
 */
import type { TrainingSplit } from '../formats/adapter-info';
import type { RunSetup, TrainRequest } from './protocol';

type StoredTrainRequest = Omit<TrainRequest, 'recompute'> & {
  recompute?: TrainRequest['recompute'];
  checkpoint?: TrainRequest['recompute'];
};

export function readRunSetup(setup: unknown): RunSetup {
  const { train, prepare } = setup as { train: StoredTrainRequest; prepare: RunSetup['prepare'] };
  const { checkpoint, recompute, ...rest } = train;
  return { train: { ...rest, recompute: recompute ?? checkpoint ?? 'auto' }, prepare };
}

/** Which rows the run held out, as its adapter keeps them (null only for a run without a mapping). */
export function trainingSplit(prepare: RunSetup['prepare']): TrainingSplit | null {
  const { fileName, sheet, mapping, useChatTemplate, maxLength, valSplit, seed } = prepare;
  if (!mapping) return null;
  return { fileName, ...(sheet && { sheet }), mapping, useChatTemplate, maxLength, valSplit, seed };
}
