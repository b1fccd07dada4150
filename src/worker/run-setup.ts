/**
 * A saved run's setup as this version reads it. Runs saved before the recomputation of layers had its own
 * name stored that choice as `checkpoint`; "checkpoint" now means only a saved training state.
 */
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
