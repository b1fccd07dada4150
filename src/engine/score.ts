/** Per-token log-probabilities of a token sequence under the model (adapter as currently enabled). */
import { tokenLogProbs } from './loss';
import { hiddenStates, lmHead, type LlamaModel } from './model';
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
    return tokenLogProbs(lmHead(model, hidden), Int32Array.from(tokens.slice(1)));
  });
  const logprobs = Array.from(await result.data());
  result.dispose();
  return { tokens, logprobs, nll: -logprobs.reduce((a, b) => a + b, 0) / logprobs.length };
}
