// The page's client when the engine worker dies: every waiting request fails with words saying what happened
// and what to do, later requests fail at once, and the page hears about it exactly once. A double stands in
// for the Worker.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { describeCrash, EngineClient, SILENCE_LIMITS_MS, type WorkerLike } from '../src/worker/client';

class WorkerDouble implements WorkerLike {
  onmessage: WorkerLike['onmessage'] = null;
  onerror: WorkerLike['onerror'] = null;
  onmessageerror: WorkerLike['onmessageerror'] = null;
  sent: unknown[] = [];
  terminated = false;
  postMessage(message: unknown): void {
    this.sent.push(message);
  }
  terminate(): void {
    this.terminated = true;
  }
  reply(data: unknown): void {
    this.onmessage?.call(this as unknown as Worker, { data } as MessageEvent);
  }
  fail(message?: string): { defaultPrevented: boolean } {
    const event = {
      message,
      defaultPrevented: false,
      preventDefault() {
        this.defaultPrevented = true;
      },
    };
    this.onerror?.call(this as unknown as Worker, event as unknown as ErrorEvent);
    return event;
  }
}

describe('engine client', () => {
  it('answers requests by id and streams their events', async () => {
    const worker = new WorkerDouble();
    const client = new EngineClient(worker);
    const tokens: string[] = [];
    const answer = client.request('generate', { prompt: 'Hi' }, (t) => tokens.push(t));
    expect(worker.sent).toEqual([{ id: 1, type: 'generate', params: { prompt: 'Hi' } }]);
    worker.reply({ id: 1, type: 'token', text: ' there' });
    worker.reply({ id: 1, type: 'result', value: { text: ' there', tokens: [7], stopReason: 'length' } });
    await expect(answer).resolves.toEqual({ text: ' there', tokens: [7], stopReason: 'length' });
    expect(tokens).toEqual([' there']);
  });

  it('fails every waiting request when the worker has an uncaught error, ends it, and tells the page once', async () => {
    const worker = new WorkerDouble();
    const crashes: string[] = [];
    const client = new EngineClient(worker, (message) => crashes.push(message));
    const training = client.request('train', {} as never);
    const chat = client.request('chatSetup', {});
    const event = worker.fail('Uncaught Error: injected failure');
    const expected =
      'The engine stopped after an unexpected error (Error: injected failure). Press "Restart engine" to start a fresh one; the model you had loads again. ' +
      'Your datasets, adapters and training checkpoints stay on this device.';
    await expect(training).rejects.toThrow(expected);
    await expect(chat).rejects.toThrow(expected);
    expect(event.defaultPrevented).toBe(true);
    expect(worker.terminated).toBe(true);
    expect(client.crashed).toBe(expected);
    // Nothing waits on a dead worker: later requests fail at once, and are never sent.
    await expect(client.request('score', { text: 'x' })).rejects.toThrow(expected);
    expect(worker.sent).toHaveLength(2);
    worker.fail('Uncaught Error: a second one');
    expect(crashes).toEqual([expected]);
  });

  it('says when the engine ran out of memory, and when it died without a message', () => {
    expect(describeCrash('Uncaught RangeError: Array buffer allocation failed')).toMatch(
      /^The engine ran out of memory \(RangeError: Array buffer allocation failed\)\. Press "Restart engine".*Then try a smaller model, batch size or max length\.$/,
    );
    expect(
      describeCrash('Uncaught RangeError: WebAssembly.Memory.grow(): Maximum memory size exceeded'),
    ).toMatch(/^The engine ran out of memory/);
    expect(describeCrash('')).toMatch(
      /^The engine could not start or stopped without saying why\. Press "Restart engine"/,
    );
  });

  it('treats a message the page cannot read as a crash too', async () => {
    const worker = new WorkerDouble();
    const client = new EngineClient(worker);
    const pending = client.request('cachedModels', {});
    worker.onmessageerror?.call(worker as unknown as Worker, {} as MessageEvent);
    await expect(pending).rejects.toThrow(
      /^The engine stopped after an unexpected error \(the engine sent a message the page could not read\)/,
    );
  });
});

describe('the watchdog', () => {
  afterEach(() => vi.useRealTimers());
  const settings = { mapping: null, useChatTemplate: true, maxLength: 64, valSplit: 0.1, seed: 0 };

  it('ends a worker that goes silent while preparing a dataset, and says what it was doing', async () => {
    vi.useFakeTimers();
    const worker = new WorkerDouble();
    const crashes: string[] = [];
    const client = new EngineClient(worker, (message) => crashes.push(message));
    const answer = client.request('configureDataset', settings);
    const limit = SILENCE_LIMITS_MS.configureDataset!;
    vi.advanceTimersByTime(limit - 1);
    expect(worker.terminated).toBe(false);
    vi.advanceTimersByTime(1);
    await expect(answer).rejects.toThrow(
      `The engine stopped answering while preparing the dataset (no sign of life for ${limit / 1000} s), so it was ended. Press "Restart engine"`,
    );
    expect(worker.terminated).toBe(true);
    expect(crashes).toHaveLength(1);
  });

  it('leaves a worker alone while it reports progress, and stops counting once it answers', async () => {
    vi.useFakeTimers();
    const worker = new WorkerDouble();
    const client = new EngineClient(worker);
    const answer = client.request('configureDataset', settings);
    const limit = SILENCE_LIMITS_MS.configureDataset!;
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(limit - 1000);
      worker.reply({ id: 1, type: 'dataset', event: { done: i, total: 5 } });
    }
    worker.reply({ id: 1, type: 'result', value: 'prepared' });
    await expect(answer).resolves.toBe('prepared');
    vi.advanceTimersByTime(10 * limit);
    expect(worker.terminated).toBe(false);
  });

  it('never times a training run: one step of a large model blocks the worker for minutes', async () => {
    vi.useFakeTimers();
    const worker = new WorkerDouble();
    const client = new EngineClient(worker);
    void client.request('pauseTraining', {});
    vi.advanceTimersByTime(3_600_000);
    expect(SILENCE_LIMITS_MS.train).toBeUndefined();
    expect(worker.terminated).toBe(false);
  });
});
