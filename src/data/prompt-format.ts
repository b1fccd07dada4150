/** How a model's examples are put together: plain text or through its chat template (see template.ts). */
import type { ChatMessage } from './dataset';

/** How prompt and completion are put together for one model. */
export interface PromptFormat {
  /** Between a non-empty prompt and its completion when no chat template is used. */
  separator: string;
  /** The model's chat template, when the user chose to train through it; null for plain text. */
  chat: ChatTemplateFormat | null;
  /** Whether the encoder ends each completion with EOS (skipped when the completion already holds it). */
  addEos: boolean;
}

export interface ChatTemplateFormat {
  render(messages: ChatMessage[], addGenerationPrompt: boolean): string;
  /** What the template writes after an assistant message's content (e.g. "</s>\n"). */
  endOfTurn: string;
}
