// The Compare step's chat over a scripted engine worker: one message goes to every pane in turn and each
// answer streams into its own pane, the settings sent are the shared generation settings (the stop strings
// as a list, not the text box), a failing pane shows its error while the others answer, follow-ups carry the
// conversation only where the model keeps one, and Stop skips the panes still waiting.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ChatReply, ChatSetup } from '../src/worker/protocol';
import { pageWithModel, type Page } from './helpers/ui-state';

const SETUP: ChatSetup = {
  adapter: { id: 'a1', name: 'qa adapter' },
  style: { useChatTemplate: false, promptTemplate: '{question}', conversation: false },
  defaultStopStrings: ['<|im_end|>', '</s>'],
  multiTurn: false,
  shotsAvailable: 36,
};

const reply = (text: string, overrides: Partial<ChatReply> = {}): ChatReply => ({
  text,
  tokens: 3,
  stopReason: 'stop-string',
  promptTokens: 12,
  shotsUsed: 0,
  tokensPerSecond: 40,
  ...overrides,
});

let page: Page;

async function withSetup(setup: ChatSetup): Promise<void> {
  page.double.handle('chatSetup', () => setup);
  await page.adapters.refreshSetup();
}

beforeEach(async () => {
  page = await pageWithModel();
  await withSetup(SETUP);
});
afterEach(() => vi.unstubAllGlobals());

describe('sending a message', () => {
  it('streams the base pane, then the fine-tuned pane, each into its own pane', async () => {
    const { chat, double } = page;
    double.hold('chat');
    chat.message = 'What is 2+2?';
    const sending = chat.send();
    expect(chat.message).toBe('');
    expect(chat.answering).toBe(true);

    const base = await double.next('chat');
    expect(base.params.pane).toBe('base');
    expect(base.params.turns).toEqual([{ role: 'user', content: 'What is 2+2?' }]);
    base.emit(' Fo');
    base.emit(' Four');
    expect(chat.panes.base.streaming).toBe(' Four');
    expect(chat.panes.tuned.streaming).toBeNull();
    base.answer(reply(' Four', { tokens: 2 }));

    const tuned = await double.next('chat');
    expect(tuned.params.pane).toBe('tuned');
    expect(chat.panes.base.streaming).toBeNull();
    expect(chat.panes.base.turns).toEqual([
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: ' Four' },
    ]);
    expect(chat.panes.base.last).toEqual({
      tokens: 2,
      promptTokens: 12,
      tokensPerSecond: 40,
      stopReason: 'stop-string',
      shotsUsed: 0,
    });
    tuned.emit('4');
    expect(chat.panes.tuned.streaming).toBe('4');
    tuned.answer(reply('4'));
    await sending;

    expect(chat.panes.tuned.turns.at(-1)).toEqual({ role: 'assistant', content: '4' });
    expect(chat.panes.tuned.streaming).toBeNull();
    expect(chat.answering).toBe(false);
    // Without few-shot, the third pane is not asked.
    expect(double.sent('chat').map((c) => c.pane)).toEqual(['base', 'tuned']);
    expect(chat.panes.fewshot.turns).toEqual([]);
  });

  it("sends the shared settings with the template's stop strings, and the box's text never", async () => {
    const { chat, double } = page;
    double.handle('chat', () => reply('ok'));
    chat.settings.temperature = 0.7;
    chat.settings.maxNewTokens = 20;
    chat.message = 'Hi';
    await chat.send();
    const [first] = double.sent('chat');
    expect(first.settings).toEqual({
      temperature: 0.7,
      topP: 0.95,
      maxNewTokens: 20,
      stopStrings: ['<|im_end|>', '</s>'],
      seed: 0,
    });
    expect(first.settings).not.toHaveProperty('stopText');
    // Both panes get the same settings, so the comparison is fair.
    expect(double.sent('chat')[1].settings).toEqual(first.settings);
  });

  it('sends the stop strings the person typed, one per line, blank lines dropped', async () => {
    const { chat, double } = page;
    double.handle('chat', () => reply('ok'));
    expect(chat.stopText).toBe('<|im_end|>\n</s>');
    chat.settings.stopText = 'END\n\n###\n';
    expect(chat.stopText).toBe('END\n\n###\n');
    chat.message = 'Hi';
    await chat.send();
    expect(double.sent('chat')[0].settings.stopStrings).toEqual(['END', '###']);
    expect(double.sent('chat')[0].settings).not.toHaveProperty('stopText');
  });

  it('asks the few-shot pane too, with the number of examples chosen', async () => {
    const { chat, double } = page;
    double.handle('chat', (request) => reply(`from ${request.pane}`, { shotsUsed: request.shots }));
    chat.fewShot = true;
    chat.shots = 2;
    chat.message = 'Hi';
    await chat.send();
    expect(double.sent('chat').map((c) => [c.pane, c.shots])).toEqual([
      ['base', 2],
      ['tuned', 2],
      ['fewshot', 2],
    ]);
    expect(chat.panes.fewshot.turns.at(-1)?.content).toBe('from fewshot');
    expect(chat.panes.fewshot.last?.shotsUsed).toBe(2);
  });

  it('sends nothing for an empty message, or while an answer is being written', async () => {
    const { chat, double } = page;
    chat.message = '   ';
    await chat.send();
    expect(double.sent('chat')).toEqual([]);

    double.hold('chat');
    chat.message = 'first';
    const sending = chat.send();
    const base = await double.next('chat');
    chat.message = 'second';
    await chat.send();
    expect(double.sent('chat')).toHaveLength(1);
    expect(chat.message).toBe('second');
    base.answer(reply('a'));
    (await double.next('chat')).answer(reply('b'));
    await sending;
  });

  it('a quick prompt fills the box, sends it, and keeps the answer the data expects', async () => {
    const { chat, double } = page;
    double.handle('chat', () => reply('6'));
    await chat.ask({ message: 'What is 3+3?', answer: '6' });
    expect(double.sent('chat')[0].turns).toEqual([{ role: 'user', content: 'What is 3+3?' }]);
    expect(chat.expected).toEqual({ message: 'What is 3+3?', answer: '6' });
    chat.clear();
    expect(chat.expected).toBeNull();
    expect(chat.panes.base.turns).toEqual([]);
  });
});

describe('when a pane fails', () => {
  it("shows the worker's words in that pane, and the other pane still answers", async () => {
    const { chat, double } = page;
    const message = 'There is no fine-tuned adapter yet. Train one, or choose one in the adapter library.';
    double.handle('chat', (request) => {
      if (request.pane === 'tuned') throw new Error(message);
      return reply('Four');
    });
    chat.message = 'What is 2+2?';
    await chat.send();
    expect(chat.panes.tuned.error).toBe(message);
    expect(chat.panes.tuned.streaming).toBeNull();
    expect(chat.panes.base.error).toBeNull();
    expect(chat.panes.base.turns.at(-1)?.content).toBe('Four');
    expect(chat.answering).toBe(false);
  });

  it('keeps a failed exchange out of the conversation the next message carries', async () => {
    await withSetup({ ...SETUP, multiTurn: true });
    const { chat, double } = page;
    let failTuned = true;
    double.handle('chat', (request) => {
      if (request.pane === 'tuned' && failTuned) throw new Error('The prompt is too long.');
      return reply(`${request.pane} answer`);
    });
    chat.message = 'one';
    await chat.send();
    failTuned = false;
    chat.message = 'two';
    await chat.send();
    const [, , base2, tuned2] = double.sent('chat');
    expect(base2.turns).toEqual([
      { role: 'user', content: 'one' },
      { role: 'assistant', content: 'base answer' },
      { role: 'user', content: 'two' },
    ]);
    // The tuned pane's first message got no answer: it is not part of its conversation.
    expect(tuned2.turns).toEqual([{ role: 'user', content: 'two' }]);
    // The pane clears its error when asked again.
    expect(chat.panes.tuned.error).toBeNull();
  });

  it('starts afresh with each message when the model keeps no conversation', async () => {
    const { chat, double } = page;
    double.handle('chat', () => reply('x'));
    chat.message = 'one';
    await chat.send();
    chat.message = 'two';
    await chat.send();
    expect(double.sent('chat')[2].turns).toEqual([{ role: 'user', content: 'two' }]);
    // The pane still shows the whole exchange.
    expect(chat.panes.base.turns.map((t) => t.content)).toEqual(['one', 'x', 'two', 'x']);
  });
});

describe('stopping', () => {
  it('stops the answer being written and skips the panes still waiting, saying so', async () => {
    const { chat, double } = page;
    double.hold('chat');
    chat.message = 'Tell me a long story';
    const sending = chat.send();
    const base = await double.next('chat');
    base.emit('Once upon');
    double.handle('stopChat', () => {
      // The worker ends the generation in progress with what it has.
      base.answer(reply('Once upon', { stopReason: 'aborted' }));
      return true;
    });
    chat.stop();
    await sending;
    expect(double.sent('stopChat')).toHaveLength(1);
    expect(chat.panes.base.turns.at(-1)?.content).toBe('Once upon');
    expect(chat.panes.base.last?.stopReason).toBe('aborted');
    expect(chat.panes.tuned.error).toBe('Stopped before this pane answered.');
    expect(chat.panes.tuned.turns).toEqual([{ role: 'user', content: 'Tell me a long story' }]);
    expect(double.sent('chat')).toHaveLength(1);
    expect(chat.answering).toBe(false);
  });
});
