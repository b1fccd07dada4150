/** What a TRL bundle is made from: the examples as webtune trained on them, and the run's settings. */
import type { Row } from '../data/dataset';
import type { Example } from '../data/examples';
import type { Mapping } from '../data/layout';
import type { LoraSettings } from '../engine/lora';
import type { TrainSettings } from '../engine/train';
import type { RunObjective } from './adapter-info';

/**
 * One example as webtune trained on it: `row` indexes the dataset's rows; prompt and completion as rendered,
 * and for a conversation its segments and the messages whose turns were trained.
 */
export type TrlExample = Pick<Example, 'row' | 'prompt' | 'completion'> &
  Partial<Pick<Example, 'segments' | 'trainedTurns'>> & {
    /** For a preference pair: the rejected answer as rendered (`completion` is then the chosen one). */
    rejected?: string;
  };

/** The run's settings: the trainer's, plus the batch size, max length and validation split the data used. */
export interface TrlRunSettings
  extends
    Pick<TrainSettings, 'learningRate' | 'epochs' | 'gradAccum' | 'warmupSteps' | 'weightDecay' | 'seed'>,
    Partial<Pick<TrainSettings, 'maxGradNorm' | 'evalEvery' | 'patience' | 'keep'>> {
  batchSize: number;
  /** Longest sequence in tokens (BOS and EOS included). */
  maxLength: number;
  /** Fraction held out for validation; only shown in comments (the split itself is in the files). */
  valSplit?: number;
}

export interface TrlBundleInput {
  /** `model_name_or_path`: a Hub id (HuggingFaceTB/SmolLM2-135M-Instruct) or a folder on the GPU machine. */
  model: string;
  /** The adapter's (run's) name: the output folder is named after it. */
  name: string;
  /** The dataset file's name, for the README. */
  datasetName?: string;
  /** The dataset's rows; `example.row` indexes them (needed for the messages of chat-template data). */
  rows: readonly Row[];
  mapping: Mapping;
  /** Whether training went through the model's chat template (`format.chat !== null`). */
  chatTemplate: boolean;
  /** The examples of the training split, as buildTrainingSet or trlExamples returns them. */
  train: readonly TrlExample[];
  /** The validation split; empty when there is none. */
  validation: readonly TrlExample[];
  settings: TrlRunSettings;
  lora: LoraSettings;
  /**
   * What the run minimised (default SFT). DPO or ORPO write the examples as pairs (each with `rejected`) and
   * a `trl dpo` or ORPO config in place of the SFT one.
   */
  objective?: RunObjective;
}
