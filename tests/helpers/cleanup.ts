/**
 * What a test makes (models, LoRA adapters, trainers, sessions) is released after it whether it passed or
 * failed, so one failing assertion does not leave tensors, or a LoRA wrapped round a model, to the tests
 * after it and their leak checks (`tf.memory().numTensors` flat). Releasing twice is harmless: a test may
 * still dispose what it made itself, where its own leak check needs that.
 *
 *   const own = disposeAfterEach();
 *   it('…', () => {
 *     const { model } = own(loadFixture('stories260K'));
 *     const adapter = own.adapter(model, attachLora(model, settings, init));
 *     const trainer = own.add(new Trainer(model, adapter, data, train));
 */
import { afterEach } from 'vitest';
import { detachLora, type LoraAdapter } from '../../src/engine/lora';
import { disposeModel, type LlamaModel } from '../../src/engine/model';

export interface Owned {
  /** A loaded model (anything holding one as `.model`), disposed after the test. */
  <T extends { model: LlamaModel }>(loaded: T): T;
  /** An adapter attached to `model`, detached (and disposed) after the test, before the model is disposed. */
  adapter<T extends LoraAdapter>(model: LlamaModel, adapter: T): T;
  /** Anything with dispose() (a trainer, a session, a llama.cpp run), disposed after the test. */
  add<T extends { dispose(): unknown }>(value: T): T;
  /** Any other release, run after the test. */
  later(release: () => unknown): void;
}

/**
 * Registers an afterEach (in the enclosing describe, or the file) that releases, newest first, what the
 * tests handed over.
 */
export function disposeAfterEach(): Owned {
  const pending: (() => unknown)[] = [];
  afterEach(async () => {
    let failure: unknown = null;
    for (const release of pending.splice(0).reverse()) {
      try {
        await release();
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure) throw failure;
  });
  const own = (<T extends { model: LlamaModel }>(loaded: T): T => {
    pending.push(() => disposeModel(loaded.model));
    return loaded;
  }) as Owned;
  own.adapter = (model, adapter) => {
    pending.push(() => detachLora(model, adapter));
    return adapter;
  };
  own.add = (value) => {
    pending.push(() => value.dispose());
    return value;
  };
  own.later = (release) => {
    pending.push(release);
  };
  return own;
}
