/** Per-token log-probabilities of a token sequence under the model (adapter as currently enabled). */
import { tokenLogProbs } from './loss';
import { hiddenStates, lmHead, logitRowsPerChunk, type LlamaModel } from './model';
import { tf } from './tf';

export interface ScoreResult {
  tokens: number[];
  /** logprobs[i] = log p(tokens[i+1] | tokens[..i]) */
  logprobs: number[];
  /** Mean negative log-likelihood per predicted token. */
  nll: number;
}

export async function scoreTokens(model: LlamaModel, tokens: number[]): Promise<ScoreResult> {
  if (tokens.length < 2) throw new Error('Scoring needs at least two tokens (the first one is only context).');
  if (tokens.length > model.args.maxPositions) {
    throw new Error(`The text is ${tokens.length} tokens long; this model handles at most ${model.args.maxPositions}.`);
  }
  const outOfVocab = tokens.find((t) => !Number.isInteger(t) || t < 0 || t >= model.args.vocabSize);
  if (outOfVocab !== undefined) throw new Error(`Token id ${outOfVocab} is outside the vocabulary (0–${model.args.vocabSize - 1}).`);
  const result = tf.tidy(() => {
    const hidden = hiddenStates(model, Int32Array.from(tokens.slice(0, -1)), 1);
    const targets = Int32Array.from(tokens.slice(1));
    // Row chunks keep each logits tensor under the device's buffer limit (one chunk when there is none).
    const chunk = Math.min(targets.length, logitRowsPerChunk(model));
    const parts: tf.Tensor1D[] = [];
    for (let start = 0; start < targets.length; start += chunk) {
      const rows = Math.min(chunk, targets.length - start);
      parts.push(tokenLogProbs(lmHead(model, tf.slice(hidden, [start, 0], [rows, -1])), targets.subarray(start, start + rows)) as tf.Tensor1D);
    }
    return parts.length === 1 ? parts[0] : tf.concat(parts);
  });
  const logprobs = Array.from(await result.data());
  result.dispose();
  return { tokens, logprobs, nll: -logprobs.reduce((a, b) => a + b, 0) / logprobs.length };
}
