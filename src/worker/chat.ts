/**
 * The chat's side of the worker: one message answered by the base model (adapter off), the fine-tuned
 * model (adapter on) or the base model shown training examples first — same engine, same weights, same
 * prompt format as training, streamed token by token and stoppable.
 */
import { promptFormatFor } from '../data';
import { chatPrompt, defaultStopStrings, fewShotPrompt, type PromptStyle } from '../data/chat-prompt';
import { generate } from '../engine/generate';
import { endTokenIds, type LoadedModel } from '../engine/load';
import type { AdapterSlot } from './adapter-slot';
import type { ChatReply, ChatRequest, ChatSetup } from './protocol';
import type { DatasetSession } from './dataset-session';

/**
 * What the chat does before any dataset or adapter says otherwise: the message as the prompt, on its own
 * line.
 */
const defaultStyle = (loaded: LoadedModel): PromptStyle => ({
  useChatTemplate: loaded.tokenizer.chatTemplate !== null,
  promptTemplate: '{message}',
  conversation: false,
});

export class ChatSession {
  private abort: AbortController | null = null;

  constructor(
    private readonly slot: AdapterSlot,
    private readonly dataset: DatasetSession,
  ) {}

  /** The adapter's own style wins (it is how that adapter learned); then the open dataset's; then plain. */
  private style(loaded: LoadedModel): PromptStyle {
    return this.slot.info?.style ?? this.dataset.style ?? defaultStyle(loaded);
  }

  setup(loaded: LoadedModel): ChatSetup {
    const style = this.style(loaded);
    const format = promptFormatFor(loaded.tokenizer, style.useChatTemplate);
    const info = this.slot.info;
    return {
      adapter: this.slot.adapter && info ? { id: info.id, name: info.name } : null,
      style,
      defaultStopStrings: defaultStopStrings(format),
      multiTurn: format.chat !== null || style.conversation,
      shotsAvailable: this.dataset.shots(Number.MAX_SAFE_INTEGER).length,
    };
  }

  async reply(loaded: LoadedModel, request: ChatRequest, onText: (text: string) => void): Promise<ChatReply> {
    if (this.abort) throw new Error('The chat is still answering. Wait for it or press Stop.');
    const { tokenizer, args } = loaded;
    const style = this.style(loaded);
    const format = promptFormatFor(tokenizer, style.useChatTemplate);
    const adapter = this.slot.adapter;
    if (request.pane === 'tuned' && !adapter)
      throw new Error('There is no fine-tuned adapter yet. Train one, or choose one in the adapter library.');

    let shotsUsed = 0;
    let ids: number[];
    const room = args.maxPositions - request.settings.maxNewTokens;
    const stopStrings = [...request.settings.stopStrings];
    if (request.pane === 'fewshot') {
      const shots = this.dataset.shots(request.shots);
      if (shots.length === 0)
        throw new Error(
          'Open a dataset first: the few-shot pane shows the base model some of its training examples.',
        );
      // Fewer examples when they would not leave room for the answer.
      shotsUsed = shots.length;
      ids = tokenizer.encode(fewShotPrompt(shots, request.turns, style, format));
      while (shotsUsed > 1 && ids.length > room)
        ids = tokenizer.encode(fewShotPrompt(shots.slice(0, --shotsUsed), request.turns, style, format));
      // Without a chat template the examples are separated by a blank line; the base model would go on to
      // invent the next one.
      if (!format.chat) stopStrings.push('\n\n');
    } else {
      ids = tokenizer.encode(chatPrompt(request.turns, style, format));
    }
    if (ids.length >= args.maxPositions) {
      throw new Error(
        `The prompt is ${ids.length} tokens, but this model reads at most ${args.maxPositions}. Start a new conversation or shorten the message.`,
      );
    }

    const wasEnabled = adapter?.enabled ?? false;
    if (adapter) adapter.enabled = request.pane === 'tuned';
    this.abort = new AbortController();
    const started = performance.now();
    try {
      const result = await generate(loaded.model, ids, {
        temperature: request.settings.temperature,
        topP: request.settings.topP,
        maxNewTokens: request.settings.maxNewTokens,
        seed: request.settings.seed,
        stopStrings,
        eosTokenIds: endTokenIds(loaded),
        decode: (tokens) => tokenizer.decode(tokens),
        signal: this.abort.signal,
        onToken: async (_token, text) => {
          onText(text);
          // Let a Stop message in between tokens.
          await new Promise((resolve) => setTimeout(resolve, 0));
        },
      });
      const seconds = (performance.now() - started) / 1000;
      return {
        text: result.text,
        tokens: result.tokens.length,
        stopReason: result.stopReason,
        promptTokens: ids.length,
        shotsUsed,
        tokensPerSecond: result.tokens.length / Math.max(seconds, 1e-3),
      };
    } finally {
      if (adapter) adapter.enabled = wasEnabled;
      this.abort = null;
    }
  }

  get busy(): boolean {
    return this.abort !== null;
  }

  stop(): boolean {
    this.abort?.abort();
    return this.abort !== null;
  }
}
