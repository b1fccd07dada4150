/** Per-token log-probabilities of a token sequence under the model (adapter as currently enabled). */
import { shiftForNextToken, type Batch } from './batch';
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
  if (tokens.length < 2)
    throw new Error('Scoring needs at least two tokens (the first one is only context).');
  if (tokens.length > model.args.maxPositions) {
    throw new Error(
      `The text is ${tokens.length} tokens long; this model handles at most ${model.args.maxPositions}.`,
    );
  }
  const outOfVocab = tokens.find((t) => !Number.isInteger(t) || t < 0 || t >= model.args.vocabSize);
  if (outOfVocab !== undefined)
    throw new Error(`Token id ${outOfVocab} is outside the vocabulary (0–${model.args.vocabSize - 1}).`);
  const result = tf.tidy(() => {
    const hidden = hiddenStates(model, Int32Array.from(tokens.slice(0, -1)), 1);
    const targets = Int32Array.from(tokens.slice(1));
    // Row chunks keep each logits tensor under the device's buffer limit (one chunk when there is none).
    const chunk = Math.min(targets.length, logitRowsPerChunk(model));
    const parts: tf.Tensor1D[] = [];
    for (let start = 0; start < targets.length; start += chunk) {
      const rows = Math.min(chunk, targets.length - start);
      parts.push(
        tokenLogProbs(
          lmHead(model, tf.slice(hidden, [start, 0], [rows, -1])),
          targets.subarray(start, start + rows),
        ) as tf.Tensor1D,
      );
    }
    return parts.length === 1 ? parts[0] : tf.concat(parts);
  });
  const logprobs = Array.from(await result.data());
  result.dispose();
  return { tokens, logprobs, nll: -logprobs.reduce((a, b) => a + b, 0) / logprobs.length };
}

/** Teacher-forced figures of one example's completion tokens. */
export interface CompletionScore {
  /** Σ −log p(target) over the completion tokens. */
  nll: number;
  /** Completion tokens that are the model's most likely next token given the true prefix. */
  correct: number;
  /** Completion tokens scored. */
  tokens: number;
}

/**
 * Per batch row: the completion tokens' summed negative log-likelihood and how many of them the model
 * ranks first (token accuracy under teacher forcing). Only completion positions go through the lm_head.
 */
export async function scoreCompletions(model: LlamaModel, batch: Batch): Promise<CompletionScore[]> {
  const { inputs, keyMask, targets, weights, batchSize } = shiftForNextToken(batch);
  const steps = inputs.length / batchSize;
  const rows = Int32Array.from(Array.from(weights.keys()).filter((i) => weights[i] > 0));
  const scores: CompletionScore[] = Array.from({ length: batchSize }, () => ({
    nll: 0,
    correct: 0,
    tokens: 0,
  }));
  if (rows.length === 0) return scores;
  const rowTargets = Int32Array.from(rows, (i) => targets[i]);
  const [logprobs, best] = tf.tidy(() => {
    const hidden = tf.gather(
      hiddenStates(model, inputs, batchSize, { attentionMask: keyMask }),
      tf.tensor1d(rows, 'int32'),
    ) as tf.Tensor2D;
    const chunk = Math.min(rows.length, logitRowsPerChunk(model));
    const lp: tf.Tensor1D[] = [];
    const top: tf.Tensor1D[] = [];
    for (let start = 0; start < rows.length; start += chunk) {
      const size = Math.min(chunk, rows.length - start);
      const logits = lmHead(model, tf.slice(hidden, [start, 0], [size, -1]));
      lp.push(tokenLogProbs(logits, rowTargets.subarray(start, start + size)));
      top.push(tf.argMax(logits, 1) as tf.Tensor1D);
    }
    return [tf.concat(lp), tf.concat(top)];
  });
  const [lpData, bestData] = [await logprobs.data(), await best.data()];
  tf.dispose([logprobs, best]);
  rows.forEach((position, i) => {
    const s = scores[Math.floor(position / steps)];
    s.nll -= lpData[i];
    s.correct += bestData[i] === rowTargets[i] ? 1 : 0;
    s.tokens++;
  });
  return scores;
}
