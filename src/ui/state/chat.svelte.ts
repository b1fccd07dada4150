/** The side-by-side chat: one message to every pane, answers streamed in turn, shared generation settings. */
import type { ChatMessage } from '../../data';
import type { Shot } from '../../data/chat-prompt';
import type { ChatPane, GenerationSettings } from '../../worker/protocol';
import { adapters } from './adapters.svelte';
import { engine } from './engine.svelte';

export interface PaneState {
  turns: ChatMessage[];
  /** The answer being written right now. */
  streaming: string | null;
  error: string | null;
  /** How the last answer went: tokens, speed, why it ended. */
  last: {
    tokens: number;
    promptTokens: number;
    tokensPerSecond: number;
    stopReason: string;
    shotsUsed: number;
  } | null;
}

/**
 * The exchanges that got an answer: a message whose answer failed or was skipped is not part of the
 * conversation.
 */
function answered(turns: ChatMessage[]): ChatMessage[] {
  return turns.filter((turn, i) => turn.role === 'assistant' || turns[i + 1]?.role === 'assistant');
}

const emptyPane = (): PaneState => ({ turns: [], streaming: null, error: null, last: null });

export const PANE_TITLES: Record<ChatPane, string> = {
  base: 'Base model',
  tuned: 'Fine-tuned model',
  fewshot: 'Base + few-shot',
};

class ChatState {
  settings = $state<GenerationSettings & { stopText: string | null }>({
    temperature: 0,
    topP: 0.95,
    maxNewTokens: 48,
    stopStrings: [],
    seed: 0,
    stopText: null,
  });
  fewShot = $state(false);
  shots = $state(3);
  message = $state('');
  /** The answer the data expects, when the message came from a quick prompt. */
  expected = $state<Shot | null>(null);
  panes = $state<Record<ChatPane, PaneState>>({
    base: emptyPane(),
    tuned: emptyPane(),
    fewshot: emptyPane(),
  });
  answering = $state(false);
  private stopped = false;

  active = $derived<ChatPane[]>(this.fewShot ? ['base', 'tuned', 'fewshot'] : ['base', 'tuned']);
  /** Stop strings as one per line; the template's default until the user edits them. */
  stopText = $derived(this.settings.stopText ?? (adapters.setup?.defaultStopStrings ?? []).join('\n'));

  clear(): void {
    this.panes = { base: emptyPane(), tuned: emptyPane(), fewshot: emptyPane() };
    this.expected = null;
  }

  ask(quick: Shot): Promise<void> {
    this.message = quick.message;
    return this.send(quick);
  }

  /** Sends the message box to every pane in turn: base (adapter off), fine-tuned (on), then few-shot. */
  async send(expected: Shot | null = null): Promise<void> {
    const client = engine.client;
    const text = this.message;
    if (!client || this.answering || text.trim() === '') return;
    this.message = '';
    this.expected = expected;
    this.answering = true;
    this.stopped = false;
    const multiTurn = adapters.setup?.multiTurn ?? false;
    const { stopText: _stopText, ...shared } = $state.snapshot(this.settings);
    const settings: GenerationSettings = {
      ...shared,
      stopStrings: this.stopText.split('\n').filter((s) => s !== ''),
    };
    try {
      for (const pane of this.active) {
        const state = this.panes[pane];
        const user: ChatMessage = { role: 'user', content: text };
        const turns = multiTurn ? [...answered($state.snapshot(state.turns)), user] : [user];
        state.turns.push(user);
        state.error = null;
        if (this.stopped) {
          state.error = 'Stopped before this pane answered.';
          continue;
        }
        state.streaming = '';
        try {
          const reply = await client.request(
            'chat',
            { pane, turns, settings, shots: this.shots },
            (partial) => (state.streaming = partial),
          );
          state.turns.push({ role: 'assistant', content: reply.text });
          state.last = {
            tokens: reply.tokens,
            promptTokens: reply.promptTokens,
            tokensPerSecond: reply.tokensPerSecond,
            stopReason: reply.stopReason,
            shotsUsed: reply.shotsUsed,
          };
        } catch (error) {
          state.error = (error as Error).message;
        } finally {
          state.streaming = null;
        }
      }
    } finally {
      this.answering = false;
    }
  }

  stop(): void {
    this.stopped = true;
    void engine.client?.request('stopChat', {});
  }
}

export const chat = new ChatState();
