import { scoreTokens } from '../engine/score';
import { nextTokenDistributions, quantizationCost, type QuantizationCost } from '../engine/quant-cost';
import { WEIGHTS_LABEL } from '../engine/weights-choice';
import { parse, required, type Options } from './args';
import type { Output } from './output';
import { MODEL_SOURCE_HELP, MODEL_SOURCE_OPTIONS, sourceOptions } from './model-source';
import {
  closeSession,
  openSession,
  WEIGHTS_HELP,
  WEIGHTS_OPTION,
  reportWeights,
  weightsSetting,
} from './session';

export const SCORE_HELP = `webtune score --model DIR --text STR [--adapter FILE.zip] [--backend cpu|wasm|webgpu] [--json]

Per-token log-probabilities of a text (BOS added as the tokenizer does).
${MODEL_SOURCE_HELP}
${WEIGHTS_HELP}
With weights narrower than 32 bits, also what they cost on this text against the 32-bit model (loaded
after, from the same files): the mean |difference| of the log-probs and the KL divergence of the
next-token distributions, KL(32-bit ‖ narrower), mean and largest over the positions.
--json prints {"tokens":[ids incl. BOS],"logprobs":[log p(token i+1 | tokens ≤ i)],"nll":mean,"weights",
"against_f32":{"mean_abs_logprob_diff","mean_kl","max_kl"} (narrower weights only)}`;

const OPTIONS: Options = {
  model: { type: 'string' },
  adapter: { type: 'string' },
  text: { type: 'string' },
  backend: { type: 'string' },
  ...WEIGHTS_OPTION,
  ...MODEL_SOURCE_OPTIONS,
};

export async function scoreCommand(argv: string[], out: Output): Promise<void> {
  const values = parse(argv, OPTIONS, 'score');
  if (values.help) return out.help(SCORE_HELP);
  const model = required(values, 'model', 'score');
  const text = required(values, 'text', 'score');
  const session = await openSession({
    model,
    adapter: values.adapter as string | undefined,
    backend: values.backend as string | undefined,
    source: sourceOptions(values, out),
    weights: weightsSetting(values),
  });
  reportWeights(weightsSetting(values), session.weights, out);
  const format = session.weights.format;
  let result;
  let narrow: Float32Array[] | null = null;
  try {
    result = await scoreTokens(session.model, session.tokenizer.encode(text));
    if (format !== 'f32') narrow = await nextTokenDistributions(session.model, result.tokens);
  } finally {
    closeSession(session);
  }
  let cost: QuantizationCost | null = null;
  if (narrow) {
    out.progress(`measuring what ${WEIGHTS_LABEL[format]} weights cost against the 32-bit model…`);
    const wide = await openSession({
      model,
      adapter: values.adapter as string | undefined,
      backend: values.backend as string | undefined,
      source: sourceOptions(values, out),
      weights: 'f32',
    });
    try {
      cost = quantizationCost(await nextTokenDistributions(wide.model, result.tokens), narrow, result.tokens);
    } finally {
      closeSession(wide);
    }
  }
  const scored = result;
  out.result(
    {
      tokens: scored.tokens,
      logprobs: scored.logprobs,
      nll: scored.nll,
      weights: format,
      ...(cost && {
        against_f32: {
          mean_abs_logprob_diff: cost.meanAbsLogprobDiff,
          mean_kl: cost.meanKl,
          max_kl: cost.maxKl,
        },
      }),
    },
    () =>
      `${scored.logprobs.length} predicted tokens, mean negative log-likelihood ${scored.nll.toFixed(4)} (perplexity ${Math.exp(scored.nll).toFixed(2)})` +
      (cost
        ? `\nagainst 32-bit: log-probs move ${cost.meanAbsLogprobDiff.toFixed(4)} on average; KL divergence ${cost.meanKl.toFixed(5)} nats a token on average, ${cost.maxKl.toFixed(5)} at most`
        : ''),
  );
}
