/** The page's side of the worker protocol: one promise per request, tokens through a callback. */
import type { HubEvent, Requests, RequestName, TrainEvent, TrainingRequest, WorkerRequest, WorkerResponse } from './protocol';

type EventOf<K extends RequestName> = K extends TrainingRequest ? TrainEvent : K extends 'loadHubModel' | 'loadModelUrl' ? HubEvent : string;

export class EngineClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; onEvent?: (event: string | TrainEvent | HubEvent) => void }>();

  constructor(private readonly worker: Worker) {
    worker.onmessage = (event: MessageEvent<WorkerResponse>) => {
      const message = event.data;
      const entry = this.pending.get(message.id);
      if (!entry) return;
      if (message.type === 'token') return entry.onEvent?.(message.text);
      if (message.type === 'train' || message.type === 'hub') return entry.onEvent?.(message.event);
      this.pending.delete(message.id);
      if (message.type === 'result') entry.resolve(message.value);
      else entry.reject(new Error(message.message));
    };
  }

  static start(): EngineClient {
    return new EngineClient(new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module' }));
  }

  /** Sends a request; `onEvent` receives streamed text (chat), training progress or download progress before the result. */
  request<K extends RequestName>(type: K, params: Requests[K]['params'], onEvent?: (event: EventOf<K>) => void, transfer: Transferable[] = []): Promise<Requests[K]['result']> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onEvent: onEvent as (event: string | TrainEvent | HubEvent) => void });
      this.worker.postMessage({ id, type, params } as WorkerRequest, transfer);
    });
  }

  terminate(): void {
    this.worker.terminate();
    for (const { reject } of this.pending.values()) reject(new Error('The engine was stopped.'));
    this.pending.clear();
  }
}
