/**
 * The page's state modules (src/ui/state/*.svelte.ts) in Node, talking to a scripted engine worker through
 * the real EngineClient. The modules are singletons, so `freshPage()` re-imports them (vi.resetModules)
 * with an empty IndexedDB (fake-indexeddb) and a new engine double: every test starts from a fresh page.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { vi } from 'vitest';
import type { ModelArgs } from '../../src/engine/config';
import type { StepMetrics } from '../../src/engine/train';
import type { NewAdapter } from '../../src/store/adapters';
import type { WorkerLike } from '../../src/worker/client';
import type {
  ModelSummary,
  PreparedDataset,
  RequestName,
  Requests,
  TrainResult,
  WorkerRequest,
  WorkerResponse,
} from '../../src/worker/protocol';

type Params<K extends RequestName> = Requests[K]['params'];
type Result<K extends RequestName> = Requests[K]['result'];

/** What the worker streams for a request before its answer, by the request's type (protocol.ts). */
function eventMessage(id: number, type: RequestName, event: unknown): WorkerResponse {
  switch (type) {
    case 'chat':
    case 'generate':
      return { id, type: 'token', text: event as string };
    case 'train':
    case 'resumeTraining':
    case 'resumeSavedRun':
      return { id, type: 'train', event: event as never };
    case 'openDataset':
    case 'configureDataset':
      return { id, type: 'dataset', event: event as never };
    case 'loadModelUrl':
    case 'loadHubModel':
      return { id, type: 'hub', event: event as never };
    case 'evaluate':
      return { id, type: 'evaluate', event: event as never };
    case 'exportAdapter':
      return { id, type: 'export', event: event as never };
    default:
      throw new Error(`The worker sends no events for ${type}.`);
  }
}

/** One request as the worker received it, and the worker's side of it. */
export class Call<K extends RequestName = RequestName> {
  settled = false;
  constructor(
    private readonly worker: ScriptedWorker,
    readonly id: number,
    readonly type: K,
    readonly params: Params<K>,
  ) {}

  /** Streams what the real worker sends before its answer: text so far (chat) or progress. */
  emit(event: unknown): void {
    this.worker.deliver(eventMessage(this.id, this.type, event));
  }

  answer(value: Result<K>): void {
    this.settled = true;
    this.worker.deliver({ id: this.id, type: 'result', value });
  }

  fail(message: string): void {
    this.settled = true;
    this.worker.deliver({ id: this.id, type: 'error', message });
  }
}

/**
 * How the double answers a type of request: a value (or a promise of one) answers it, a thrown error fails
 * it with its message, `undefined` leaves it for the test to answer through the Call.
 */
export type Handler<K extends RequestName> = (
  params: Params<K>,
  call: Call<K>,
) => Result<K> | undefined | Promise<Result<K> | undefined>;

/** Stands in for `new Worker(engine.worker.ts)`: hands each request to the engine double's script. */
export class ScriptedWorker implements WorkerLike {
  onmessage: WorkerLike['onmessage'] = null;
  onerror: WorkerLike['onerror'] = null;
  onmessageerror: WorkerLike['onmessageerror'] = null;
  terminated = false;

  constructor(private readonly engine: EngineDouble) {}

  postMessage(message: WorkerRequest): void {
    this.engine.receive(new Call(this, message.id, message.type, message.params));
  }

  terminate(): void {
    this.terminated = true;
  }

  deliver(data: WorkerResponse): void {
    if (!this.terminated) this.onmessage?.call(this as unknown as Worker, { data } as MessageEvent);
  }

  /** An error nothing in the worker caught (the browser reports it on the Worker object). */
  crash(message: string): void {
    const event = { message, preventDefault() {} };
    this.onerror?.call(this as unknown as Worker, event as unknown as ErrorEvent);
  }
}

/** The engine worker's script, shared by every worker the page starts (a restart starts another). */
export class EngineDouble {
  readonly workers: ScriptedWorker[] = [];
  readonly calls: Call[] = [];
  private readonly handlers = new Map<RequestName, Handler<RequestName>>();
  /** Requests no handler answers, waiting for a test to take them. */
  private readonly unclaimed: Call[] = [];
  private readonly takers: { type: RequestName; take: (call: Call) => void }[] = [];

  spawn(): ScriptedWorker {
    const worker = new ScriptedWorker(this);
    this.workers.push(worker);
    return worker;
  }

  get worker(): ScriptedWorker {
    return this.workers.at(-1)!;
  }

  handle<K extends RequestName>(type: K, handler: Handler<K>): this {
    this.handlers.set(type, handler as unknown as Handler<RequestName>);
    return this;
  }

  /** Leaves requests of this type for the test to answer (`next`). */
  hold(type: RequestName): this {
    this.handlers.delete(type);
    return this;
  }

  /** The params of every request of this type, in the order sent. */
  sent<K extends RequestName>(type: K): Params<K>[] {
    return this.calls.filter((c) => c.type === type).map((c) => c.params as Params<K>);
  }

  /** The next request of this type that no handler answered: sent already, or when it is sent. */
  next<K extends RequestName>(type: K): Promise<Call<K>> {
    const index = this.unclaimed.findIndex((c) => c.type === type);
    if (index >= 0) return Promise.resolve(this.unclaimed.splice(index, 1)[0] as unknown as Call<K>);
    return new Promise((take) => this.takers.push({ type, take: take as unknown as (call: Call) => void }));
  }

  receive(call: Call): void {
    this.calls.push(call);
    const handler = this.handlers.get(call.type);
    if (!handler) {
      const taker = this.takers.findIndex((t) => t.type === call.type);
      if (taker >= 0) this.takers.splice(taker, 1)[0].take(call);
      else this.unclaimed.push(call);
      return;
    }
    // The real worker answers in a later task, never inside postMessage.
    void Promise.resolve()
      .then(() => handler(call.params, call))
      .then(
        (value) => value !== undefined && !call.settled && call.answer(value),
        (error: unknown) => !call.settled && call.fail((error as Error).message),
      );
  }
}

export const MODEL_ARGS: ModelArgs = {
  modelType: 'llama',
  hiddenSize: 64,
  intermediateSize: 172,
  numLayers: 5,
  numHeads: 8,
  numKvHeads: 4,
  headDim: 8,
  vocabSize: 512,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  maxPositions: 512,
  tieWordEmbeddings: true,
  qkvBias: false,
  oBias: false,
  qkNorm: false,
  family: 'llama',
  normPlacement: 'pre',
  normKind: 'weight',
  activation: 'silu',
  layerAttention: Array.from({ length: 5 }, () => ({ window: null, ropeTheta: 10000 })),
  attentionScale: 1 / Math.sqrt(8),
  embedScale: 1,
  bosTokenId: 1,
  eosTokenIds: [2],
};

export const MODEL: ModelSummary = {
  name: 'stories260K',
  modelType: 'llama',
  parameters: 260_000,
  layers: 5,
  hiddenSize: 64,
  vocabSize: 512,
  hasChatTemplate: false,
  args: MODEL_ARGS,
  weights: {
    format: 'f32',
    reason: '32-bit: training on 1 × 256 tokens needs about 0.1 GB, within the 3.0 GB a tab can count on',
  },
};

/** What the worker makes of a small question/answer file once a model is loaded. */
export function prepared(overrides: Partial<PreparedDataset> = {}): PreparedDataset {
  return {
    format: 'csv',
    columns: ['question', 'answer'],
    rows: 40,
    mapping: { kind: 'template', promptTemplate: '{question}', completionTemplate: '{answer}' },
    detected: true,
    guess: null,
    preview: [{ prompt: 'What is 2+2?', completion: '4', truncated: false }],
    stats: {
      rows: 40,
      examples: 40,
      tokens: 1200,
      completionTokens: 200,
      longestExample: 40,
      truncatedRows: 0,
      noTargetRows: 0,
      trainedTurns: 40,
      lastTurnOnlyRows: 0,
      emptyRowsSkipped: 0,
      duplicateRowsSkipped: 0,
      invalidRowsSkipped: 0,
    },
    trainExamples: 36,
    validationExamples: 4,
    skipped: [],
    quickPrompts: [{ message: 'What is 3+3?', answer: '6' }],
    quickPromptsFrom: 'validation',
    labels: null,
    ...overrides,
  };
}

export const step = (n: number, totalSteps: number, loss: number): StepMetrics => ({
  step: n,
  totalSteps,
  epoch: 0,
  loss,
  learningRate: 0.001,
  gradNorm: 1,
  tokens: 100 * n,
  tokensPerSecond: 500,
});

export function trainResult(overrides: Partial<TrainResult> = {}): TrainResult {
  return {
    backend: { backend: 'cpu', reason: 'test double' },
    steps: 3,
    trainLoss: 1.5,
    valLoss: 1.7,
    tokensPerSecond: 500,
    stopped: false,
    paused: false,
    adapterId: null,
    ...overrides,
  };
}

export const newAdapter = (name: string): NewAdapter => ({
  name,
  modelName: MODEL.name,
  datasetId: 'd1',
  datasetName: 'qa.csv',
  settings: { rank: 8 },
  trainLoss: 1.2,
  valLoss: 1.4,
  lossHistory: [{ step: 1, loss: 2 }],
  zip: Uint8Array.of(80, 75, 3, 4),
});

/**
 * A fresh page: new state modules (and store modules, so no open database is shared), an empty IndexedDB,
 * the page at http://127.0.0.1:5173/ (`search` for its link), and `new Worker()` giving the engine double's
 * workers. Call `vi.unstubAllGlobals()` after each test.
 */
export async function freshPage(search = '') {
  vi.resetModules();
  vi.stubGlobal('indexedDB', new IDBFactory());
  vi.stubGlobal('location', new URL(`http://127.0.0.1:5173/${search}`));
  // A browser always has one (Node 20 has none); what it offers is up to each test.
  vi.stubGlobal('navigator', {});
  const double = new EngineDouble();
  double.handle('init', () => ({ backend: 'cpu', reason: 'test double' }));
  double.handle('cachedModels', () => []);
  // `new Worker(...)` in EngineClient.start: a constructor that returns an object gives that object.
  vi.stubGlobal('Worker', function Worker() {
    return double.spawn();
  });
  const [
    { engine },
    { dataset },
    { training },
    { adapters },
    { chat },
    { evaluation },
    adapterStore,
    datasetStore,
    runStore,
  ] = await Promise.all([
    import('../../src/ui/state/engine.svelte'),
    import('../../src/ui/state/dataset.svelte'),
    import('../../src/ui/state/training.svelte'),
    import('../../src/ui/state/adapters.svelte'),
    import('../../src/ui/state/chat.svelte'),
    import('../../src/ui/state/evaluation.svelte'),
    import('../../src/store/adapters'),
    import('../../src/store/datasets'),
    import('../../src/store/runs'),
  ]);
  // What the page keeps in IndexedDB, as the same (fresh) store modules see it.
  const store = { ...adapterStore, ...datasetStore, ...runStore };
  return { double, engine, dataset, training, adapters, chat, evaluation, store };
}

export type Page = Awaited<ReturnType<typeof freshPage>>;

/** The page with the model loaded from this site (as `?model=/models/stories260K` does). */
export async function pageWithModel(search = ''): Promise<Page> {
  const page = await freshPage(search);
  page.double.handle('loadModelUrl', () => MODEL);
  await page.engine.loadFromUrl('/models/stories260K');
  return page;
}

/** Resolves once `check` holds, trying after each turn of the event loop (no fixed sleep). */
export async function until(check: () => boolean, what = 'the condition'): Promise<void> {
  for (let turn = 0; turn < 1000; turn++) {
    if (check()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`Still waiting for ${what}.`);
}
