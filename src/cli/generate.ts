import { generate } from '../engine/generate';
import { endTokenIds } from '../engine/load';
import { number, parse, required, type Options } from './args';
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

export const GENERATE_HELP = `webtune generate --model DIR --prompt STR [options] [--json]

Continues a prompt. The prompt is raw text continued as given (BOS added as the tokenizer does);
with --chat it is sent as a user turn through the model's chat template.
  --adapter FILE.zip|ID  use a LoRA adapter: a PEFT zip or folder, or a Hub id (user/adapter), cached
  --max-new-tokens N     default 64
  --temperature T        0 = greedy (default)
  --top-p P              nucleus sampling, default 1
  --top-k K              default 0 (no limit)
  --seed S               sampling seed, default 0
  --stop STR             stop before this text (repeatable)
  --chat                 format the prompt with the chat template
  --backend NAME         cpu (default), wasm, webgpu or auto
${MODEL_SOURCE_HELP}
${WEIGHTS_HELP}
--json prints {"text": continuation only, "tokens": [new ids]}`;

const OPTIONS: Options = {
  model: { type: 'string' },
  adapter: { type: 'string' },
  prompt: { type: 'string' },
  'max-new-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-p': { type: 'string' },
  'top-k': { type: 'string' },
  seed: { type: 'string' },
  stop: { type: 'string', multiple: true },
  chat: { type: 'boolean' },
  backend: { type: 'string' },
  ...WEIGHTS_OPTION,
  ...MODEL_SOURCE_OPTIONS,
};

export async function generateCommand(argv: string[], out: Output): Promise<void> {
  const values = parse(argv, OPTIONS, 'generate');
  if (values.help) return out.help(GENERATE_HELP);
  const model = required(values, 'model', 'generate');
  const prompt = values.prompt as string | undefined;
  if (prompt === undefined) required(values, 'prompt', 'generate');
  const settings = {
    maxNewTokens: number(values, 'max-new-tokens', 64, { min: 1, integer: true }),
    temperature: number(values, 'temperature', 0, { min: 0 }),
    topP: number(values, 'top-p', 1, { min: 0, max: 1 }),
    topK: number(values, 'top-k', 0, { min: 0, integer: true }),
    seed: number(values, 'seed', 0, { integer: true }),
  };
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
    const { tokenizer } = session;
    const text = values.chat
      ? tokenizer.applyChatTemplate([{ role: 'user', content: prompt! }], { addGenerationPrompt: true })
      : prompt!;
    // A chat template writes BOS itself when it wants one; don't add a second.
    const ids =
      values.chat &&
      tokenizer.bosTokenId !== null &&
      text.startsWith(tokenizer.decode([tokenizer.bosTokenId], { skipSpecialTokens: false }))
        ? tokenizer.encode(text, { addSpecialTokens: false })
        : tokenizer.encode(text);
    const eosTokenIds = endTokenIds(session);
    result = await generate(session.model, ids, {
      ...settings,
      eosTokenIds,
      stopStrings: (values.stop as string[] | undefined) ?? [],
      decode: (t) => tokenizer.decode(t),
    });
  } finally {
    closeSession(session);
  }
  out.result({ text: result.text, tokens: result.tokens }, () => result.text);
}
