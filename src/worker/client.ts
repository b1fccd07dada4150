/** The page's side of the worker protocol: one promise per request, tokens through a callback. */
import type { DraftEvent } from '../data/drafting';
import type {
  DatasetProgress,
  DatasetRequest,
  EvalProgress,
  ExportProgress,
  HubEvent,
  PublishProgress,
  Requests,
  RequestName,
  TrainEvent,
  TrainingEstimate,
  TrainingRequest,
  WorkerRequest,
  WorkerResponse,
} from './protocol';

type EventOf<K extends RequestName> = K extends TrainingRequest
  ? TrainEvent
  : K extends 'loadHubModel' | 'loadModelUrl' | 'addHubAdapter'
    ? HubEvent
    : K extends 'publishAdapter'
      ? PublishProgress
      : K extends DatasetRequest
        ? DatasetProgress
        : K extends 'evaluate'
          ? EvalProgress
          : K extends 'exportAdapter'
            ? ExportProgress
            : K extends 'estimateTraining'
              ? TrainingEstimate
              : K extends 'draftQuestions'
                ? DraftEvent
                : string;
type AnyEvent =
  | string
  | TrainEvent
  | HubEvent
  | DatasetProgress
  | EvalProgress
  | ExportProgress
  | TrainingEstimate
  | DraftEvent
  | PublishProgress;

/** What the page needs of a Worker (a test can hand in a double). */
export type WorkerLike = Pick<
  Worker,
  'postMessage' | 'terminate' | 'onmessage' | 'onerror' | 'onmessageerror'
>;

const AFTER_CRASH =
  'Press "Restart engine" to start a fresh one; the model you had loads again. Your datasets, adapters and training checkpoints stay on this device.';

/**
 * The words a person reads when the engine worker dies: what happened, then what to do. `detail` is the
 * browser's message for the uncaught error, empty when there is none (the worker's script did not load).
 */
export function describeCrash(detail: string): string {
  const what = detail.replace(/^Uncaught\s+/, '').trim();
  if (!what) return `The engine could not start or stopped without saying why. ${AFTER_CRASH}`;
  if (
    /out of memory|allocation failed|Maximum memory size|Invalid typed array length|Invalid array buffer length|\bOOM\b/i.test(
      what,
    )
  ) {
    return `The engine ran out of memory (${what}). ${AFTER_CRASH} Then try a smaller model, batch size or max length.`;
  }
  return `The engine stopped after an unexpected error (${what}). ${AFTER_CRASH}`;
}

/**
 * How long some requests may go without a sign of life before the worker counts as stuck. Preparing a
 * dataset reports progress every fraction of a second, and a chat streams its tokens (a long prompt's
 * first one may take a while on a CPU); a silence far past that means a tokenizer or template that does
 * not end. Other requests legitimately block for minutes (a training step of a large model) and have none.
 */
export const SILENCE_LIMITS_MS: Partial<Record<RequestName, number>> = {
  openDataset: 60_000,
  configureDataset: 60_000,
  chat: 300_000,
  draftQuestions: 300_000,
};

const DOING: Partial<Record<RequestName, string>> = {
  openDataset: 'reading the dataset',
  configureDataset: 'preparing the dataset',
  chat: 'answering in the chat',
  draftQuestions: 'drafting questions',
};

export class EngineClient {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    {
      resolve: (v: unknown) => void;
      reject: (e: Error) => void;
      onEvent?: (event: AnyEvent) => void;
      alive?: () => void;
    }
  >();
  /** Set once the worker has crashed: what happened and what to do, for the page to show. */
  crashed: string | null = null;

  /**
   * `onCrash` hears once when the worker dies; every request waiting on it has failed with the same message.
   */
  constructor(
    private readonly worker: WorkerLike,
    private readonly onCrash?: (message: string) => void,
  ) {
    worker.onmessage = (event: MessageEvent<WorkerResponse>) => {
      const message = event.data;
      const entry = this.pending.get(message.id);
      if (!entry) return;
      entry.alive?.();
      if (message.type === 'token') return entry.onEvent?.(message.text);
      if (
        message.type === 'train' ||
        message.type === 'hub' ||
        message.type === 'dataset' ||
        message.type === 'evaluate' ||
        message.type === 'export' ||
        message.type === 'estimate' ||
        message.type === 'draft' ||
        message.type === 'publish'
      )
        return entry.onEvent?.(message.event);
      this.pending.delete(message.id);
      if (message.type === 'result') entry.resolve(message.value);
      else entry.reject(new Error(message.message));
    };
    // An error nothing in the worker caught (or a worker script that failed to load): the engine's state is
    // unknown, so it is replaced rather than trusted.
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault?.();
      this.crash(describeCrash(event.message ?? ''));
    };
    worker.onmessageerror = () =>
      this.crash(describeCrash('the engine sent a message the page could not read'));
  }

  static start(onCrash?: (message: string) => void): EngineClient {
    return new EngineClient(
      new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module' }),
      onCrash,
    );
  }

  /**
   * Sends a request; `onEvent` receives streamed text (chat), training progress or download progress before
   * the result.
   */
  request<K extends RequestName>(
    type: K,
    params: Requests[K]['params'],
    onEvent?: (event: EventOf<K>) => void,
    transfer: Transferable[] = [],
  ): Promise<Requests[K]['result']> {
    if (this.crashed) return Promise.reject(new Error(this.crashed));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const limit = SILENCE_LIMITS_MS[type];
      let timer: ReturnType<typeof setTimeout> | undefined;
      // The watchdog: every message for this request restarts the count; silence past the limit ends the
      // worker.
      const alive =
        limit === undefined
          ? undefined
          : () => {
              clearTimeout(timer);
              timer = setTimeout(
                () =>
                  this.crash(
                    `The engine stopped answering while ${DOING[type]} (no sign of life for ${limit / 1000} s), so it was ended. ${AFTER_CRASH}`,
                  ),
                limit,
              );
            };
      const settle =
        <T>(finish: (value: T) => void) =>
        (value: T) => {
          clearTimeout(timer);
          finish(value);
        };
      this.pending.set(id, {
        resolve: settle(resolve as (v: unknown) => void),
        reject: settle(reject),
        onEvent: onEvent as (event: AnyEvent) => void,
        alive,
      });
      alive?.();
      this.worker.postMessage({ id, type, params } as WorkerRequest, transfer);
    });
  }

  private crash(message: string): void {
    if (this.crashed) return;
    this.crashed = message;
    this.worker.terminate();
    this.failPending(message);
    this.onCrash?.(message);
  }

  private failPending(message: string): void {
    for (const { reject } of this.pending.values()) reject(new Error(message));
    this.pending.clear();
  }

  terminate(): void {
    this.worker.terminate();
    this.failPending('The engine was stopped.');
  }
}
