import { describe, expect, it } from 'vitest';
import { explainFailures } from '../src/worker/failures';

describe('training failures in plain words', () => {
  const fail = (message: string) =>
    explainFailures(
      () => 6,
      () => Promise.reject(new Error(message)),
    ).catch((e: Error) => e.message);

  it('says what to do when memory runs out or the GPU is lost, and that the checkpoint is kept', async () => {
    expect(await fail('Array buffer allocation failed')).toMatch(
      /ran out of memory.*step 7.*smaller batch size.*Resume training/,
    );
    expect(await fail('GPUDevice was lost: reason unknown')).toMatch(
      /GPU stopped responding.*WebAssembly backend.*checkpoint/,
    );
  });

  it('passes other errors through unchanged, and results too', async () => {
    expect(await fail('Training stopped at step 3: the loss became NaN.')).toBe(
      'Training stopped at step 3: the loss became NaN.',
    );
    expect(
      await explainFailures(
        () => 0,
        async () => 42,
      ),
    ).toBe(42);
  });
});
