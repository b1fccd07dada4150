/**
 * Rendering a model's Jinja chat template with bounds. The template comes from the model's
 * tokenizer_config.json, so it is untrusted, and Jinja rendering is synchronous: a template such as
 * `{% for i in range(10**9) %}x{% endfor %}` would hold the engine worker (or the CLI) forever and
 * then run it out of memory. This renders with the same Jinja engine transformers.js uses
 * (@huggingface/jinja, same parser and runtime), through an interpreter that counts every evaluation
 * step and refuses the template as soon as it
 *  - takes more than MAX_STEPS evaluation steps or MAX_MS of wall time (checked every 256 steps),
 *  - asks range() for more than MAX_RANGE numbers (range builds its whole list in one call),
 *  - produces any string longer than the output cap, or more string data in total than the work cap.
 * Real templates (SmolLM2, Qwen2.5, Qwen3) render a long conversation in a few thousand steps.
 */
import { Environment, Interpreter, parse, tokenize } from '@huggingface/jinja';

export class ChatTemplateError extends Error {
  override name = 'ChatTemplateError';
}

export const CHAT_TEMPLATE_LIMITS = {
  /** Characters of template source. Qwen3's template is ~4 KB. */
  maxTemplateChars: 256 * 1024,
  /** Evaluation steps (every node the interpreter evaluates). */
  maxSteps: 1_000_000,
  /** Wall time of one render. */
  maxMs: 3_000,
  /** Numbers range() may return at once. */
  maxRange: 100_000,
  /** The rendered prompt, and any string made on the way: 1 MiB plus twice what the messages hold. */
  outputChars: (inputChars: number) => 2 ** 20 + 2 * inputChars,
  /** All string data made during one render (pieces are counted again when concatenated). */
  workChars: (inputChars: number) => 32 * 2 ** 20 + 64 * inputChars,
};

type Program = ReturnType<typeof parse>;
type Statement = Parameters<Interpreter['evaluate']>[0];

class BoundedInterpreter extends Interpreter {
  private steps = 0;
  private work = 0;
  private readonly deadline: number;

  constructor(
    env: Environment,
    private readonly outputCap: number,
    private readonly workCap: number,
  ) {
    super(env);
    this.deadline = performance.now() + CHAT_TEMPLATE_LIMITS.maxMs;
  }

  override evaluate(statement: Statement, environment: Environment): ReturnType<Interpreter['evaluate']> {
    this.steps++;
    if (this.steps > CHAT_TEMPLATE_LIMITS.maxSteps)
      refuse(`it took more than ${CHAT_TEMPLATE_LIMITS.maxSteps.toLocaleString('en')} steps`);
    if ((this.steps & 255) === 0 && performance.now() > this.deadline)
      refuse(`it ran for more than ${CHAT_TEMPLATE_LIMITS.maxMs / 1000} s`);
    const value = super.evaluate(statement, environment);
    if (typeof value.value === 'string') {
      const length = value.value.length;
      if (length > this.outputCap)
        refuse(
          `it made a text of ${length.toLocaleString('en')} characters (the limit is ${this.outputCap.toLocaleString('en')})`,
        );
      this.work += length;
      if (this.work > this.workCap)
        refuse(`it made more than ${this.workCap.toLocaleString('en')} characters of text while rendering`);
    }
    return value;
  }
}

function refuse(why: string): never {
  throw new ChatTemplateError(
    `The model's chat template was stopped: ${why}. The template in tokenizer_config.json is broken or hostile; use a prompt template instead, or a model with a sound chat template.`,
  );
}

/** range() as Jinja has it, refusing lists longer than maxRange before building them. */
function boundedRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error('range() step must not be zero');
  const count = Math.max(0, Math.ceil((stop - start) / step));
  if (!Number.isFinite(count) || count > CHAT_TEMPLATE_LIMITS.maxRange)
    refuse(`it asked range() for ${String(count)} numbers`);
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(start + i * step);
  return out;
}

/** strftime_now as @huggingface/jinja has it (templates print today's date with it). */
function strftimeNow(format: string): string {
  const date = new Date();
  const pad2 = (n: number) => (n < 10 ? '0' : '') + n;
  return String(format).replace(/%[YmdbBHM%]/g, (token) => {
    switch (token) {
      case '%Y':
        return String(date.getFullYear());
      case '%m':
        return pad2(date.getMonth() + 1);
      case '%d':
        return pad2(date.getDate());
      case '%b':
        return new Intl.DateTimeFormat(undefined, { month: 'short' }).format(date);
      case '%B':
        return new Intl.DateTimeFormat(undefined, { month: 'long' }).format(date);
      case '%H':
        return pad2(date.getHours());
      case '%M':
        return pad2(date.getMinutes());
      default:
        return '%';
    }
  });
}

function stringChars(value: unknown, depth = 0): number {
  if (typeof value === 'string') return value.length;
  if (depth > 8 || !value || typeof value !== 'object') return 0;
  let n = 0;
  for (const v of Object.values(value)) n += stringChars(v, depth + 1);
  return n;
}

export interface CompiledChatTemplate {
  render(context: Record<string, unknown>): string;
}

/**
 * Parses `source` once (as transformers.js does: lstrip_blocks and trim_blocks on); render() is bounded as
 * above.
 */
export function compileChatTemplate(source: string): CompiledChatTemplate {
  if (source.length > CHAT_TEMPLATE_LIMITS.maxTemplateChars) {
    throw new ChatTemplateError(
      `The model's chat template is ${source.length.toLocaleString('en')} characters long (the limit is ${CHAT_TEMPLATE_LIMITS.maxTemplateChars.toLocaleString('en')}). tokenizer_config.json is damaged or hostile.`,
    );
  }
  let program: Program;
  try {
    program = parse(tokenize(source, { lstrip_blocks: true, trim_blocks: true }));
  } catch (error) {
    throw new ChatTemplateError(`The model's chat template cannot be read: ${(error as Error).message}`);
  }
  return {
    render(context) {
      const env = new Environment();
      // The globals Template.render sets, with range() bounded.
      const globals: Record<string, unknown> = {
        false: false,
        true: true,
        none: null,
        False: false,
        True: true,
        None: null,
        raise_exception: (message: unknown) => {
          throw new ChatTemplateError(
            `The model's chat template refused the conversation: ${String(message)}`,
          );
        },
        range: boundedRange,
        strftime_now: strftimeNow,
      };
      for (const [key, value] of Object.entries({ ...globals, ...context })) env.set(key, value);
      const input = stringChars(context);
      const interpreter = new BoundedInterpreter(
        env,
        CHAT_TEMPLATE_LIMITS.outputChars(input),
        CHAT_TEMPLATE_LIMITS.workChars(input),
      );
      try {
        return String(interpreter.run(program).value);
      } catch (error) {
        // Deep recursion in a macro: the stack runs out, which is a refusal like the others.
        if (error instanceof RangeError) refuse(`it failed with "${error.message}"`);
        throw error;
      }
    },
  };
}
