/**
 * The worker's side of "Draft questions": the loaded instruct model (its adapter switched off: the model as
 * published) asked, chunk by chunk of a document, to write question/answer pairs, which are read back from
 * what it wrote and sent to the page as each chunk is done. Cancel stops it between two tokens; the pairs of
 * the chunks finished before that are kept.
 */
import { promptFormatFor } from '../data';
import { defaultStopStrings } from '../data/chat-prompt';
import {
  chunkDocument,
  draftPrompt,
  parseDraftedPairs,
  type DraftedPair,
  type DraftEvent,
  type DraftRequest,
  type DraftResult,
} from '../data/drafting';
import { generate } from '../engine/generate';
import { endTokenIds, type LoadedModel } from '../engine/load';
import type { AdapterSlot } from './adapter-slot';

/** Fewest tokens a chunk's answer must have room for: three short pairs. */
const MIN_ANSWER_TOKENS = 48;

/** Lets a cancel message in between tokens. */
const nextTask = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export class DraftingSession {
  private abort: AbortController | null = null;

  constructor(private readonly slot: AdapterSlot) {}

  get busy(): boolean {
    return this.abort !== null;
  }

  /** Asks the draft in progress to stop after the token in hand; false when there is none. */
  cancel(): boolean {
    this.abort?.abort();
    return this.abort !== null;
  }

  async draft(
    loaded: LoadedModel,
    request: DraftRequest,
    onEvent: (event: DraftEvent) => void,
  ): Promise<DraftResult> {
    if (this.abort) throw new Error('Questions are already being drafted. Wait for them or press Cancel.');
    const { tokenizer, model, args } = loaded;
    const format = promptFormatFor(tokenizer, true);
    const chunks = chunkDocument(request.text, request.chunkChars);
    if (chunks.length === 0)
      throw new Error('The document has no text to draft questions from. Open a .txt or .md file with some.');
    // Every prompt is built and measured first, so a chunk too long for the model is refused before any work.
    const prompts = chunks.map((chunk) => {
      const ids = tokenizer.encode(draftPrompt(request.instruction, chunk.text, format));
      if (ids.length + MIN_ANSWER_TOKENS > args.maxPositions)
        throw new Error(
          `Chunk ${chunk.index + 1} (from line ${chunk.line}) and the instruction are ${ids.length} tokens, which leaves this model ` +
            `(${args.maxPositions} tokens at most) too little room to write questions. Lower the chunk size and start again.`,
        );
      return ids;
    });

    const abort = new AbortController();
    this.abort = abort;
    const adapter = this.slot.adapter;
    const wasEnabled = adapter?.enabled ?? false;
    // The model as published drafts: an adapter trained on the data to come has no say in it.
    if (adapter) adapter.enabled = false;
    const pairs: DraftedPair[] = [];
    let chunksDone = 0;
    try {
      onEvent({ kind: 'start', chunks: chunks.length });
      for (const chunk of chunks) {
        const ids = prompts[chunk.index];
        let written = 0;
        const result = await generate(model, ids, {
          temperature: request.temperature ?? 0,
          topP: request.topP ?? 1,
          seed: request.seed ?? 0,
          maxNewTokens: Math.min(request.maxNewTokens, args.maxPositions - ids.length),
          stopStrings: defaultStopStrings(format),
          eosTokenIds: endTokenIds(loaded),
          decode: (tokens) => tokenizer.decode(tokens),
          signal: abort.signal,
          onToken: async () => {
            onEvent({ kind: 'writing', chunk: chunk.index, tokens: ++written });
            await nextTask();
          },
        });
        // A chunk cut short by Cancel is dropped whole: its last pair may be half written.
        if (result.stopReason === 'aborted') break;
        const found = parseDraftedPairs(result.text).map((p) => ({
          ...p,
          chunk: chunk.index,
          line: chunk.line,
        }));
        pairs.push(...found);
        chunksDone++;
        onEvent({ kind: 'chunk', chunk: chunk.index, line: chunk.line, pairs: found, output: result.text });
        if (abort.signal.aborted) break;
      }
      return { pairs, chunks: chunks.length, chunksDone, cancelled: abort.signal.aborted };
    } finally {
      if (adapter) adapter.enabled = wasEnabled;
      this.abort = null;
    }
  }
}
