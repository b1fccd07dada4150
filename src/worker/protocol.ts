/**
 * The typed messages between the page and the engine worker. The worker is the only place where UI
 * and engine meet: the page sends requests, the worker answers each with a result or an error, and may
 * send events for a request (streamed text, training progress) before its result.
 */
import type { BackendChoice, BackendName } from '../engine/backend';
import type { ModelArgs } from '../engine/config';
import type { RecomputeChoice } from '../engine/memory';
import type { ObjectiveName } from '../engine/objective';
import type { ModelFiles } from '../engine/load';
import type { StepMetrics } from '../engine/train';
import type { ChatMessage } from '../data';
import type { PromptStyle } from '../data/chat-prompt';
import type { EvalReport } from '../data/evaluate';
import type { DocumentEvaluation } from '../data/evaluate-documents';
import type { PreferenceEvaluation } from '../data/evaluate-preference';
import type { EvalSplit } from '../data/eval-items';
import type { DraftEvent, DraftRequest, DraftResult } from '../data/drafting';
import type { AdapterSummary } from '../store/adapters';
import type { ExportDtype, ExportFormat } from '../formats/export-input';
import type { RunPhase } from './run-state';
import type { WeightsDecision, WeightsSetting } from '../engine/weights-choice';
import type { QuantizationCost } from '../engine/quant-cost';
import type { WeightFormat } from '../engine/quant';
import type {
  DatasetProgress,
  DatasetSettings,
  DocumentsSummary,
  OpenDatasetRequest,
  PreparedDataset,
  WindowPlace,
} from './protocol-dataset';
import type { HubEvent, HubLoadRequest, HubRequests, PublishProgress } from './protocol-hub';

export type {
  CachedModel,
  HubAccount,
  HubEvent,
  HubLoadRequest,
  PublishDraft,
  PublishProgress,
  TokenAction,
} from './protocol-hub';
export type {
  DatasetProgress,
  DatasetSettings,
  DocumentsSummary,
  OpenDatasetRequest,
  PreparedDataset,
  WindowPlace,
};

export interface ModelSummary {
  name: string;
  /** As the model card states it (Hub models); null when unknown. */
  license?: string | null;
  /** Bytes on the device and whether no network was needed (Hub models). */
  download?: { bytes: number; fromCache: boolean };
  modelType: string;
  parameters: number;
  layers: number;
  hiddenSize: number;
  vocabSize: number;
  hasChatTemplate: boolean;
  /** The shapes config.json gives, for memory estimates on the page. */
  args: ModelArgs;
  /** How the frozen weights are held, and why (see engine/weights-choice.ts). */
  weights: WeightsDecision;
}

export interface WeightsCost extends QuantizationCost {
  format: WeightFormat;
}

export interface GenerateRequest {
  prompt: string;
  maxNewTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  stopStrings?: string[];
}

export interface TrainRequest {
  /** Where the model and dataset came from, saved with checkpoints so a reload can resume. */
  source: { modelUrl: string | null; datasetId: string };
  /** Compute backend for this run; 'auto' keeps the current one. */
  backend: BackendName | 'auto';
  rank: number;
  alpha: number;
  dropout: number;
  targets: string[];
  /**
   * rsLoRA: scale the adapter by alpha/√rank instead of alpha/rank (absent in runs saved before it existed:
   * off).
   */
  useRslora?: boolean;
  learningRate: number;
  epochs: number;
  batchSize: number;
  gradAccum: number;
  warmupSteps: number;
  seed: number;
  /**
   * Recompute each layer in the backward pass (less memory, more time); 'auto': the memory estimate decides.
   */
  recompute: RecomputeChoice;
  /** Validation every N steps (default: each epoch's end), stop after `patience` evaluations without a
   * better loss (default: never), end with the best or the last weights (default: best). */
  evalEvery?: number;
  patience?: number;
  keep?: 'best' | 'last';
  /**
   * What the run teaches (default 'sft', the answers): 'dpo' and 'orpo' learn a preference from pairs of
   * answers, with `beta` DPO's β or ORPO's λ (default 0.1).
   */
  objective?: ObjectiveName;
  beta?: number;
}

/**
 * A training run's time and memory before it starts (see worker/estimate.ts): first from the device's speed
 * at once, then from one real step.
 */
export interface TrainingEstimate {
  /**
   * What the time rests on: this device's speed for the run's products ('speed': remembered from an earlier
   * step here, or a short calibration product), or a real training step of this run ('measured').
   */
  basis: 'speed' | 'measured';
  /** The whole run: its steps, validation passes and checkpoints. */
  seconds: number;
  /** Of an average step of the run (gradient accumulation included). */
  secondsPerStep: number;
  totalSteps: number;
  validationPasses: number;
  /** One pass over the validation split. */
  validationSeconds: number;
  /** What the run needs (on wasm including XNNPACK's packed weights), from estimateTrainingMemory. */
  memoryBytes: number;
  /** Whether the run will recompute its layers in the backward pass. */
  recompute: boolean;
  /** Real steps the figure rests on (0 for a first figure). */
  measuredSteps: number;
  /** Achieved GFLOP/s of the run's products on this device (what the next first figure starts from). */
  gflops: number;
  /** The backend it was measured on. */
  backend: string;
}

/** What a saved run needs to be rebuilt after a reload (stored with its checkpoint). */
export interface RunSetup {
  train: TrainRequest;
  prepare: DatasetSettings & { fileName: string };
}

export interface TrainResult {
  backend: BackendChoice;
  steps: number;
  trainLoss: number;
  valLoss: number | null;
  tokensPerSecond: number;
  stopped: boolean;
  /** Paused: the run can continue with resumeTraining. */
  paused: boolean;
  /** The finished adapter's id in the library (null when stopped, paused or not saved). */
  adapterId: string | null;
  /**
   * The lowest validation loss and its step (null without a validation split); `kept` says whose weights the
   * adapter holds.
   */
  best?: { step: number; valLoss: number } | null;
  kept?: 'best' | 'last';
  /** Ended before the last epoch: the validation loss stopped improving (patience). */
  earlyStopped?: boolean;
  /** The run finished but its adapter could not be stored (a full disk): saveAdapterAgain retries. */
  unsaved?: boolean;
}

/** One setting for both panes, so the comparison is fair. */
export interface GenerationSettings {
  /** 0: greedy (always the most likely token). */
  temperature: number;
  topP: number;
  maxNewTokens: number;
  stopStrings: string[];
  seed: number;
}

/** Base model, the same model with the adapter on, or the base model shown examples first. */
export type ChatPane = 'base' | 'tuned' | 'fewshot';

export interface ChatRequest {
  pane: ChatPane;
  /** This pane's conversation so far, ending with the new user message. */
  turns: ChatMessage[];
  settings: GenerationSettings;
  /** Training examples in the few-shot prompt (at most). */
  shots: number;
}

export interface ChatReply {
  text: string;
  tokens: number;
  stopReason: string;
  promptTokens: number;
  shotsUsed: number;
  tokensPerSecond: number;
}

/** What the chat compares and how it formats prompts. */
export interface ChatSetup {
  /** The adapter the fine-tuned pane uses, or null when there is none yet. */
  adapter: { id: string | null; name: string } | null;
  style: PromptStyle;
  /** Stop strings the chat uses unless the user changes them (the template's end of a completion). */
  defaultStopStrings: string[];
  /** Follow-up messages keep the conversation (models with a chat template) or start afresh. */
  multiTurn: boolean;
  /** Training examples available for the few-shot pane. */
  shotsAvailable: number;
}

export type TrainEvent =
  | { kind: 'backend'; choice: BackendChoice }
  | { kind: 'warning'; message: string }
  | { kind: 'step'; metrics: StepMetrics }
  /** The run's phase changed while its steps run (a pause or stop was asked for). */
  | { kind: 'phase'; phase: RunPhase }
  /**
   * DPO's pass before its first step: the log-probabilities of every pair's answers with the adapter off
   * (`done` false as it starts, true when it has ended).
   */
  | { kind: 'reference'; pairs: number; done: boolean }
  /**
   * `best`: the lowest validation loss so far, whose weights the finished adapter keeps by default;
   * `objectiveMetrics`: the objective's figures on the held-out examples (DPO, ORPO: rewards/accuracies…).
   */
  | {
      kind: 'eval';
      step: number;
      valLoss: number;
      best?: boolean;
      objectiveMetrics?: Record<string, number>;
    };

/** Evaluates the chat's adapter on the open dataset: base model, base + few-shot, fine-tuned. */
export interface EvaluateRequest {
  /** A general text whose perplexity shows what the adapter did to text it was not trained on; null: skip. */
  referenceText: string | null;
  /** Training examples in the few-shot prompts (fewer when the split has fewer). */
  shots: number;
  /**
   * 'validation': the rows the adapter held out when it was trained, rebuilt with its run's split (refused
   * when that cannot be done); 'all': every row of the open dataset, with its current settings.
   */
  split: EvalSplit;
  /**
   * The open dataset's id on this device (null: not stored): an adapter's held-out rows are only in the file
   * it was trained on, and only the page knows which stored file is open.
   */
  datasetId: string | null;
}

/** Why the adapter's held-out rows cannot be evaluated here, and what to do; every row still can be. */
export interface HeldOutRefusal {
  refused: string;
}

/** Which of the three is being measured, and how many of its examples are answered. */
export interface EvalProgress {
  /** 'preference': the held-out pairs scored by the base model, then the fine-tuned one (pairs only). */
  stage: 'base' | 'fewshot' | 'tuned' | 'preference' | 'reference';
  done: number;
  total: number;
}

export interface EvaluationResult {
  /** 'validation': the rows the adapter held out when it was trained; 'all': every row of the open file. */
  split: EvalSplit;
  examples: number;
  /** The file whose rows were evaluated. */
  datasetName: string;
  /** Few-shot examples actually shown. */
  shots: number;
  adapter: { id: string | null; name: string };
  base: EvalReport;
  fewShot: EvalReport;
  tuned: EvalReport;
  forgetting: { tokens: number; base_perplexity: number; adapted_perplexity: number } | null;
  /**
   * Documents: the held-out windows' perplexity, base and fine-tuned. Then base, fewShot and tuned hold the
   * same figures as reports without answers (no exact match, no few-shot: a text has no prompts).
   */
  documents?: DocumentEvaluation | null;
  /**
   * Preference pairs: how often the chosen answer gets the higher log-probability, and the mean margin,
   * base and fine-tuned, on the held-out pairs (all pairs for 'all').
   */
  preference?: PreferenceEvaluation | null;
  /** Why the figures could not be kept with the adapter in the library (a full disk); null when they were. */
  warning: string | null;
}

export interface ExportRequest {
  /** The library adapter; null exports the base model alone. */
  adapterId: string | null;
  format: ExportFormat;
  dtype?: ExportDtype;
  /** The model's files when the person picked them: the worker cannot open those again by itself. */
  modelFiles?: File[];
}

export interface ExportProgress {
  /** Bytes written so far, and about how many the export will have (null: small, not estimated). */
  done: number;
  total: number | null;
}

export interface ExportResult {
  file: Blob;
  fileName: string;
  bytes: number;
}

export interface Requests extends HubRequests {
  init: { params: { backend: BackendName | 'auto' }; result: BackendChoice };
  loadModel: { params: { files: ModelFiles }; result: ModelSummary };
  /** Downloads a model folder from a URL (e.g. /models/stories260K) in the worker and loads it. */
  loadModelUrl: { params: { url: string }; result: ModelSummary };
  /** Downloads (or reads from the device cache) a model by Hub id and loads it. */
  loadHubModel: { params: HubLoadRequest; result: ModelSummary };
  /**
   * How models hold their frozen weights from now on; the loaded model is loaded again that way (from the
   * device cache or the page's server; files picked from disk must be picked again). Null: none loaded.
   */
  setWeights: { params: { setting: WeightsSetting }; result: ModelSummary | null };
  /**
   * What the loaded model's narrower base weights cost on a text against its 32-bit weights (read again from
   * where the model came from), the adapter off.
   */
  weightsCost: { params: { text: string }; result: WeightsCost };
  score: { params: { text: string }; result: { tokens: number[]; logprobs: number[]; nll: number } };
  generate: { params: GenerateRequest; result: { text: string; tokens: number[]; stopReason: string } };
  /** Parses a dataset file and keeps it in the worker; works before any model is loaded. */
  openDataset: { params: OpenDatasetRequest; result: PreparedDataset };
  /** New settings for the open dataset (the file is not sent again). */
  configureDataset: { params: DatasetSettings; result: PreparedDataset };
  /** Stops the dataset preparation in progress (its request fails saying so); false when there is none. */
  cancelDataset: { params: Record<string, never>; result: boolean };
  train: { params: TrainRequest; result: TrainResult };
  resumeTraining: { params: Record<string, never>; result: TrainResult };
  /**
   * Time and memory of a run with these settings: a first figure as an event at once, then the result from
   * one real step on a throwaway adapter.
   */
  estimateTraining: { params: Omit<TrainRequest, 'source'>; result: TrainingEstimate };
  /** Continues a run saved in IndexedDB before a reload. */
  resumeSavedRun: { params: { runId: string; backend: BackendName | 'auto' }; result: TrainResult };
  /** Stores the finished run's adapter that could not be stored before; its library id. */
  saveAdapterAgain: { params: Record<string, never>; result: string };
  /** Asks the run to pause after its current step; the run's phase now. */
  pauseTraining: { params: Record<string, never>; result: RunPhase };
  /** Asks the run to stop after its current step (a paused run stops at once); the run's phase now. */
  stopTraining: { params: Record<string, never>; result: RunPhase };
  chat: { params: ChatRequest; result: ChatReply };
  stopChat: { params: Record<string, never>; result: boolean };
  chatSetup: { params: Record<string, never>; result: ChatSetup };
  /** Attaches a library adapter for the chat (null: none). */
  useAdapter: { params: { id: string | null }; result: ChatSetup };
  /** Scores the chat's adapter on the rows it held out of the open dataset, or on every row when asked. */
  evaluate: { params: EvaluateRequest; result: EvaluationResult | HeldOutRefusal };
  /** Stops the evaluation in progress (its request fails saying so); false when there is none. */
  cancelEvaluation: { params: Record<string, never>; result: boolean };
  /** Checks a PEFT zip against the loaded model and adds it to the library. */
  importAdapter: { params: { bytes: Uint8Array; fileName: string }; result: AdapterSummary };
  /**
   * Writes a library adapter (or the base model) for llama.cpp/Ollama, as a merged model or as a TRL run: one
   * zip on disk.
   */
  exportAdapter: { params: ExportRequest; result: ExportResult };
  /** Asks the loaded instruct model for question/answer pairs, chunk by chunk of a document. */
  draftQuestions: { params: DraftRequest; result: DraftResult };
  /** Stops the draft in progress after the token in hand; false when there is none. */
  cancelDrafting: { params: Record<string, never>; result: boolean };
}

export type RequestName = keyof Requests;

export type WorkerRequest = {
  [K in RequestName]: { id: number; type: K; params: Requests[K]['params'] };
}[RequestName];

export type WorkerResponse =
  | { id: number; type: 'result'; value: unknown }
  | { id: number; type: 'error'; message: string }
  | { id: number; type: 'token'; text: string }
  | { id: number; type: 'train'; event: TrainEvent }
  | { id: number; type: 'hub'; event: HubEvent }
  | { id: number; type: 'publish'; event: PublishProgress }
  | { id: number; type: 'dataset'; event: DatasetProgress }
  | { id: number; type: 'evaluate'; event: EvalProgress }
  | { id: number; type: 'export'; event: ExportProgress }
  | { id: number; type: 'estimate'; event: TrainingEstimate }
  | { id: number; type: 'draft'; event: DraftEvent };

/** Requests whose progress arrives as DatasetProgress events. */
export type DatasetRequest = 'openDataset' | 'configureDataset';

/** Requests whose progress arrives as TrainEvents. */
export type TrainingRequest = 'train' | 'resumeTraining' | 'resumeSavedRun';
