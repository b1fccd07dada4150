import { scoreTokens } from '../engine/score';
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
--json prints {"tokens":[ids incl. BOS],"logprobs":[log p(token i+1 | tokens ≤ i)],"nll":mean}`;

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
  let result;
  try {
    result = await scoreTokens(session.model, session.tokenizer.encode(text));
  } finally {
    closeSession(session);
  }
  out.result(
    { tokens: result.tokens, logprobs: result.logprobs, nll: result.nll },
    () =>
      `${result.logprobs.length} predicted tokens, mean negative log-likelihood ${result.nll.toFixed(4)} (perplexity ${Math.exp(result.nll).toFixed(2)})`,
  );
}
