/**
 * `webtune`: the engine from the command line. Every failure ends as one line on stderr naming the
 * problem and a non-zero exit code.
 */
import { cacheCommand, CACHE_HELP } from './cache';
import { readEnvironment } from '../node/environment';
import { CliError } from './errors';
import { evalCommand, EVAL_HELP } from './eval';
import { exportCommand, EXPORT_HELP } from './export';
import { generateCommand, GENERATE_HELP } from './generate';
import { createOutput, processIo, type CliIo, type Output } from './output';
import { publishCommand, PUBLISH_HELP } from './publish';
import { scoreCommand, SCORE_HELP } from './score';
import { trainCommand, TRAIN_HELP } from './train';

const HELP = `webtune — fine-tune small language models with LoRA, in the browser or here.

Usage:
  webtune train    --model DIR --data FILE --out ADAPTER.zip [options]
  webtune generate --model DIR --prompt STR [--adapter ADAPTER.zip] [options]
  webtune score    --model DIR --text STR [--adapter ADAPTER.zip]
  webtune eval     --model DIR --data FILE [--adapter ADAPTER.zip] [options]
  webtune export   --model DIR --format gguf|gguf-lora|merged|trl --out FOLDER [--adapter ADAPTER.zip]
  webtune publish  --adapter ADAPTER.zip --repo OWNER/NAME [--public] [--dry-run]
  webtune cache    [--delete ID]

Add --json for one JSON object on stdout; --help after a command for its options.
--model takes a model folder (config.json, tokenizer.json, tokenizer_config.json, model.safetensors or
its shards) or a Hugging Face Hub id such as HuggingFaceTB/SmolLM2-135M-Instruct, downloaded once into
the cache (Llama, Mistral, Qwen2 and Qwen3 architectures). --adapter takes a PEFT zip or folder, or the
Hub id of an adapter repository (user/adapter), cached the same way. Gated models and private adapters
need your token: HF_TOKEN, or the file huggingface-cli login writes (sent to huggingface.co only, unless
--send-token-to names another endpoint).

${TRAIN_HELP}

${GENERATE_HELP}

${SCORE_HELP}

${EVAL_HELP}

${EXPORT_HELP}

${PUBLISH_HELP}

${CACHE_HELP}`;

const COMMANDS: Record<string, (argv: string[], out: Output) => Promise<void>> = {
  train: trainCommand,
  generate: generateCommand,
  score: scoreCommand,
  eval: evalCommand,
  export: exportCommand,
  publish: publishCommand,
  cache: cacheCommand,
};

/** Runs one command, writing to `io` (the process's streams unless a caller such as a test gives others). */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [command, ...rest] = argv;
  const out = createOutput(rest.includes('--json'), io);
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    out.help(HELP);
    return 0;
  }
  const run = COMMANDS[command];
  if (!run) {
    io.stderr.write(
      `webtune: unknown command "${command}". Commands: ${Object.keys(COMMANDS).join(', ')}. See webtune --help.\n`,
    );
    return 2;
  }
  try {
    await run(rest, out);
    return 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    io.stderr.write(`webtune ${command}: ${message.split('\n')[0]}\n`);
    if (readEnvironment().debug && error instanceof Error && !(error instanceof CliError))
      io.stderr.write(`${error.stack}\n`);
    return 1;
  }
}
