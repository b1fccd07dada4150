/** The engine's next-token logits after a prompt: what llama.cpp's logits are compared with. */
import { hiddenStates, lmHead, type LlamaModel } from '../../src/engine/model';
import { tf } from '../../src/engine/tf';

export async function webtuneLogits(model: LlamaModel, ids: number[]): Promise<Float32Array> {
  const logits = tf.tidy(() => {
    const hidden = hiddenStates(model, Int32Array.from(ids), 1);
    return lmHead(model, tf.slice(hidden, [hidden.shape[0] - 1, 0], [1, -1]));
  });
  const data = (await logits.data()) as Float32Array;
  logits.dispose();
  return data;
}
