/**
 * What webtune knows about an adapter beyond its weights — how prompts were formatted, what it was
 * trained on and how well — carried in the safetensors header under one key, so a downloaded zip
 * imported again (on another device, after clearing storage) chats and lists exactly as before.
 * PEFT ignores header metadata, so the file stays a plain PEFT adapter.
 */
import type { PromptStyle } from '../data/chat-prompt';
import type { Mapping } from '../data/dataset';
import type { ObjectiveName } from '../engine/objective';
import { DEFAULT_DPO_BETA, DEFAULT_ORPO_LAMBDA } from '../engine/preference';

export const INFO_KEY = 'webtune';

/**
 * How a run made examples of its file and which of them it held out: the mapping, whether the model's chat
 * template formatted them, their max length, and the share and seed of the split. With the same file, this
 * rebuilds exactly the rows the adapter never trained on, so it can be evaluated on them.
 */
export interface TrainingSplit {
  fileName: string;
  /** The workbook's sheet the rows came from (absent for a text file). */
  sheet?: string;
  mapping: Mapping;
  /** Whether the chat template was used (false when the model has none, whatever the setting said). */
  useChatTemplate: boolean;
  maxLength: number;
  valSplit: number;
  seed: number;
}

export interface AdapterInfo {
  name: string;
  modelName: string;
  datasetName: string;
  promptStyle: PromptStyle | null;
  settings: unknown;
  trainLoss: number | null;
  valLoss: number | null;
  lossHistory: { step: number; loss: number; valLoss?: number }[];
  /** Absent in adapters written before webtune kept it: which rows they held out is not known. */
  split?: TrainingSplit;
}

/** What a run minimised: SFT, or DPO with its β, or ORPO with its λ (`beta`, as TRL names both). */
export interface RunObjective {
  name: ObjectiveName;
  /** DPO's β or ORPO's λ; absent for SFT. */
  beta?: number;
}

const OBJECTIVES: readonly ObjectiveName[] = ['sft', 'dpo', 'orpo'];

/**
 * The objective an adapter's run trained with, from its settings (`objective`, `beta`, as RunSettings names
 * them); an adapter written before webtune kept it, or from elsewhere, was trained with SFT.
 */
export function objectiveOf(settings: unknown): RunObjective {
  const s = (typeof settings === 'object' && settings !== null ? settings : {}) as Record<string, unknown>;
  const name = OBJECTIVES.find((o) => o === s.objective) ?? 'sft';
  if (name === 'sft') return { name };
  const fallback = name === 'dpo' ? DEFAULT_DPO_BETA : DEFAULT_ORPO_LAMBDA;
  return { name, beta: finite(s.beta) ? s.beta : fallback };
}

/** "DPO (β 0.1)", "ORPO (λ 0.1)", "SFT": the objective as the README and the progress lines name it. */
export function describeObjective(objective: RunObjective): string {
  if (objective.name === 'sft') return 'SFT';
  return `${objective.name.toUpperCase()} (${objective.name === 'dpo' ? 'β' : 'λ'} ${objective.beta})`;
}

export function infoMetadata(info: AdapterInfo): Record<string, string> {
  return { [INFO_KEY]: JSON.stringify(info) };
}

/**
 * The info webtune wrote, checked field by field (see sanitizeAdapterInfo); null for an adapter from
 * elsewhere.
 */
export function readAdapterInfo(metadata: Record<string, string> | undefined): Partial<AdapterInfo> | null {
  const text = metadata?.[INFO_KEY];
  if (!text) return null;
  try {
    return sanitizeAdapterInfo(JSON.parse(text));
  } catch {
    return null;
  }
}

const MAX_TEXT = 500;
const MAX_TEMPLATE = 10_000;
const MAX_HISTORY = 100_000;

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const text = (v: unknown, max = MAX_TEXT): string | undefined =>
  typeof v === 'string' ? v.slice(0, max) : undefined;

/**
 * Only what is well formed, from info anyone could have written into a zip: strings of bounded length,
 * finite numbers, a loss history of finite points in step order with one point per step. Anything
 * else is dropped rather than stored, so one odd record cannot break the adapter library.
 */
export function sanitizeAdapterInfo(raw: unknown): Partial<AdapterInfo> | null {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return null;
  const r = raw as Record<string, unknown>;
  const info: Partial<AdapterInfo> = {};
  for (const key of ['name', 'modelName', 'datasetName'] as const) {
    const value = text(r[key]);
    if (value !== undefined) info[key] = value;
  }
  for (const key of ['trainLoss', 'valLoss'] as const)
    if (finite(r[key]) || r[key] === null) info[key] = r[key] as number | null;
  const settings = sanitizeSettings(r.settings);
  if (settings) info.settings = settings;
  const style = sanitizePromptStyle(r.promptStyle);
  if (style !== undefined) info.promptStyle = style;
  if (Array.isArray(r.lossHistory)) info.lossHistory = sanitizeLossHistory(r.lossHistory);
  const split = sanitizeTrainingSplit(r.split);
  if (split) info.split = split;
  return info;
}

/** Text kept only when whole: a template cut short would make other examples than training made. */
const whole = (v: unknown, max: number): string | undefined =>
  typeof v === 'string' && v.length <= max ? v : undefined;

/** The split as written, or null when any part of it is missing or odd (then it cannot be rebuilt). */
export function sanitizeTrainingSplit(raw: unknown): TrainingSplit | null {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return null;
  const r = raw as Record<string, unknown>;
  const fileName = whole(r.fileName, MAX_TEXT);
  const mapping = sanitizeMapping(r.mapping);
  const sheet = whole(r.sheet, MAX_TEXT);
  const { useChatTemplate, maxLength, valSplit, seed } = r;
  if (
    fileName === undefined ||
    mapping === null ||
    typeof useChatTemplate !== 'boolean' ||
    !Number.isInteger(maxLength) ||
    (maxLength as number) < 1 ||
    !finite(valSplit) ||
    valSplit < 0 ||
    valSplit >= 1 ||
    !Number.isSafeInteger(seed)
  )
    return null;
  return {
    fileName,
    ...(sheet !== undefined && { sheet }),
    mapping,
    useChatTemplate,
    maxLength: maxLength as number,
    valSplit,
    seed: seed as number,
  };
}

function sanitizeMapping(raw: unknown): Mapping | null {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return null;
  const r = raw as Record<string, unknown>;
  if (r.kind === 'chat') {
    // The conversation's columns (ShareGPT's, TRL's conversational prompt/completion); absent: `messages`.
    const messages = whole(r.messages, MAX_TEMPLATE);
    const completion = whole(r.completion, MAX_TEMPLATE);
    return {
      kind: 'chat',
      ...(messages !== undefined && { messages }),
      ...(completion !== undefined && { completion }),
    };
  }
  if (r.kind === 'text') {
    const column = whole(r.column, MAX_TEXT);
    const { overlap } = r;
    return column !== undefined && Number.isSafeInteger(overlap) && (overlap as number) >= 1
      ? { kind: 'text', column, overlap: overlap as number }
      : null;
  }
  if (r.kind === 'pairs') {
    const [prompt, chosen, rejected] = [r.prompt, r.chosen, r.rejected].map((c) => whole(c, MAX_TEXT));
    return prompt !== undefined && chosen !== undefined && rejected !== undefined
      ? { kind: 'pairs', prompt, chosen, rejected }
      : null;
  }
  const promptTemplate = whole(r.promptTemplate, MAX_TEMPLATE);
  const completionTemplate = whole(r.completionTemplate, MAX_TEMPLATE);
  const systemTemplate = whole(r.systemTemplate, MAX_TEMPLATE);
  if (r.kind !== 'template' || promptTemplate === undefined || completionTemplate === undefined) return null;
  return {
    kind: 'template',
    promptTemplate,
    completionTemplate,
    ...(systemTemplate !== undefined && { systemTemplate }),
  };
}

/** Finite points, one per step (the last one given wins), in step order. */
export function sanitizeLossHistory(points: unknown[]): AdapterInfo['lossHistory'] {
  const byStep = new Map<number, AdapterInfo['lossHistory'][number]>();
  for (const p of points.slice(0, MAX_HISTORY)) {
    if (typeof p !== 'object' || p === null) continue;
    const { step, loss, valLoss } = p as Record<string, unknown>;
    if (!finite(step) || step < 0 || !finite(loss)) continue;
    byStep.set(step, finite(valLoss) ? { step, loss, valLoss } : { step, loss });
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

function sanitizeSettings(raw: unknown): Record<string, unknown> | null {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return null;
  const r = raw as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of [
    'rank',
    'alpha',
    'dropout',
    'epochs',
    'learningRate',
    'batchSize',
    'gradAccum',
    'warmupSteps',
    'weightDecay',
    'seed',
    'maxLength',
    'valSplit',
  ])
    if (finite(r[key])) out[key] = r[key];
  if (OBJECTIVES.includes(r.objective as ObjectiveName)) out.objective = r.objective;
  if (finite(r.beta) && r.beta >= 0) out.beta = r.beta;
  if (Array.isArray(r.targets) && r.targets.every((t) => typeof t === 'string'))
    out.targets = (r.targets as string[]).slice(0, 16).map((t) => t.slice(0, 40));
  return out;
}

function sanitizePromptStyle(raw: unknown): PromptStyle | null | undefined {
  if (raw === null) return null;
  if (typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const r = raw as Record<string, unknown>;
  const promptTemplate = text(r.promptTemplate, MAX_TEMPLATE);
  if (
    typeof r.useChatTemplate !== 'boolean' ||
    typeof r.conversation !== 'boolean' ||
    promptTemplate === undefined
  )
    return undefined;
  const system = text(r.system, MAX_TEMPLATE);
  return {
    useChatTemplate: r.useChatTemplate,
    promptTemplate,
    conversation: r.conversation,
    ...(system !== undefined && { system }),
  };
}
