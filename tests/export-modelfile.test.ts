// The Ollama Modelfile's TEMPLATE, rendered by Go's text/template (the engine Ollama uses), writes exactly
// what the model's Jinja chat template writes (rendered by @huggingface/jinja) and exactly the prompts
// webtune trained on; a template that cannot be translated is left to Ollama rather than written wrong.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chatPrompt, type PromptStyle } from '../src/data/chat-prompt';
import type { ChatMessage } from '../src/data/dataset';
import { chatTemplateFormat, plainFormat } from '../src/data/template';
import { loadTokenizer } from '../src/engine/load';
import { ollamaModelfile, ollamaTemplate } from '../src/formats/modelfile';
import { renderGoTemplate } from './helpers/go-template';
import { modelDir } from './helpers/shared';

const base = (name: string) => ({
  tokenizerJson: fs.readFileSync(path.join(modelDir(name), 'tokenizer.json'), 'utf8'),
  tokenizerConfig: fs.readFileSync(path.join(modelDir(name), 'tokenizer_config.json'), 'utf8'),
});

/** stories260K's tokenizer with another chat template. */
function withTemplate(chatTemplate: string) {
  const files = base('stories260K');
  return loadTokenizer({
    ...files,
    tokenizerConfig: JSON.stringify({ ...JSON.parse(files.tokenizerConfig), chat_template: chatTemplate }),
  });
}

// SmolLM2-Instruct's template: a default system message when the conversation has none.
const SMOLLM2 = `{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`;
// Qwen2.5-Instruct's, without the tool branches.
const QWEN25 = `{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}{%- else %}{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}{%- endif %}{%- for message in messages %}{%- if (message.role == "user") or (message.role == "system" and not loop.first) %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}{%- elif message.role == "assistant" %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}`;
// Llama 2's: the system message goes inside the first user turn, so no per-role pieces exist.
const LLAMA2 = `{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}`;

const CONVERSATIONS: ChatMessage[][] = [
  [{ role: 'user', content: 'What is {{ .Prompt }} in Go?' }],
  [
    { role: 'system', content: 'Answer like a pirate.' },
    { role: 'user', content: 'Hello' },
  ],
  [
    { role: 'user', content: 'A' },
    { role: 'assistant', content: 'B "quoted"\nline' },
    { role: 'user', content: 'C ü 🙂' },
  ],
  [
    { role: 'system', content: 'S' },
    { role: 'user', content: 'one' },
    { role: 'assistant', content: 'two' },
    { role: 'user', content: 'three' },
  ],
];

describe('Ollama TEMPLATE through Go text/template', () => {
  const cases = [
    ['stories260K-chat (its own template)', loadTokenizer(base('stories260K-chat'))],
    ['SmolLM2-Instruct', withTemplate(SMOLLM2)],
    ['Qwen2.5-Instruct', withTemplate(QWEN25)],
    // The system text opens the first user turn.
    ["tiny-random-gemma3 (Gemma 3's template)", loadTokenizer(base('tiny-random-gemma3'))],
  ] as const;
  for (const [name, tokenizer] of cases) {
    it(`${name}: every conversation renders as the Jinja template renders it`, () => {
      const format = chatTemplateFormat(tokenizer);
      const bosText = tokenizer.decode([tokenizer.bosTokenId!], { skipSpecialTokens: false });
      const template = ollamaTemplate({ style: null, chat: format.chat!.render, bosText, separator: '\n' });
      expect(template).not.toBeNull();
      const ours = renderGoTemplate(
        template!,
        CONVERSATIONS.map((messages) => ({ messages })),
      );
      const jinja = CONVERSATIONS.map((messages) =>
        tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }),
      );
      // The runtime adds BOS itself, so the template leaves out a BOS the Jinja template writes.
      expect(ours).toEqual(
        jinja.map((text) => (text.startsWith(bosText) ? text.slice(bosText.length) : text)),
      );
      // The old /api/generate path (.System and .Prompt, no .Messages) agrees too.
      const [viaPrompt, viaPromptSystem] = renderGoTemplate(template!, [
        { prompt: 'Hello' },
        { prompt: 'Hello', system: 'Answer like a pirate.' },
      ]);
      expect(viaPrompt).toBe(ours[0].replace('What is {{ .Prompt }} in Go?', 'Hello'));
      expect(viaPromptSystem).toBe(ours[1]);
    });
  }

  it('an adapter trained through the chat template with a prompt template: the typed message is wrapped as in training', () => {
    const tokenizer = withTemplate(SMOLLM2);
    const format = chatTemplateFormat(tokenizer);
    const style: PromptStyle = {
      useChatTemplate: true,
      promptTemplate: 'Ticket: {ticket}',
      conversation: false,
      system: 'Route the ticket.',
    };
    const template = ollamaTemplate({ style, chat: format.chat!.render, bosText: null, separator: '\n' })!;
    const turns: ChatMessage[] = [
      { role: 'system', content: 'Route the ticket.' },
      { role: 'user', content: 'My card was charged twice' },
    ];
    expect(renderGoTemplate(template, [{ messages: turns }])[0]).toBe(chatPrompt(turns, style, format));
  });

  it('plain prompts: a prompt template, a text continuation and plain conversations render as webtune trained them', () => {
    const format = plainFormat();
    const styles: PromptStyle[] = [
      { useChatTemplate: false, promptTemplate: 'Question: {question}\nAnswer:', conversation: false },
      { useChatTemplate: false, promptTemplate: '{prompt}', conversation: false },
      { useChatTemplate: false, promptTemplate: '', conversation: false },
    ];
    for (const style of styles) {
      const template = ollamaTemplate({ style, chat: null, bosText: null, separator: format.separator })!;
      expect(renderGoTemplate(template, [{ prompt: 'Who is {{Tom}}?' }])[0]).toBe(
        chatPrompt([{ role: 'user', content: 'Who is {{Tom}}?' }], style, format),
      );
    }
    const conversation: PromptStyle = { useChatTemplate: false, promptTemplate: '', conversation: true };
    const template = ollamaTemplate({ style: conversation, chat: null, bosText: null, separator: '\n' })!;
    for (const messages of CONVERSATIONS)
      expect(renderGoTemplate(template, [{ messages }])[0]).toBe(chatPrompt(messages, conversation, format));
  });

  it('a template whose text depends on more than the role (Llama 2) is not translated: the Modelfile says so and has no TEMPLATE', () => {
    const tokenizer = withTemplate(LLAMA2);
    const format = chatTemplateFormat(tokenizer);
    const modelfile = ollamaModelfile({
      from: './model.gguf',
      style: null,
      chat: format.chat!.render,
      bosText: '<s>',
      separator: '\n',
      stops: ['</s>'],
    });
    expect(modelfile.template).toBeNull();
    expect(modelfile.text).not.toContain('TEMPLATE');
    expect(modelfile.text).toMatch(/could not be written for Ollama/);
  });

  it('the Modelfile names the files, the system message and the stop strings, quoted as Ollama reads them (no escapes)', () => {
    const style: PromptStyle = {
      useChatTemplate: false,
      promptTemplate: '{q}',
      conversation: false,
      system: 'Be "brief"',
    };
    const modelfile = ollamaModelfile({
      from: './base.gguf',
      adapter: './adapter.gguf',
      style,
      chat: null,
      bosText: null,
      separator: '\n',
      stops: ['<|im_end|>', 'a "b"\nc', 'x """ y'],
    });
    expect(modelfile.text).toBe(
      'FROM ./base.gguf\nADAPTER ./adapter.gguf\nTEMPLATE """{{ .Prompt }}\n"""\nSYSTEM """Be "brief""""\n' +
        'PARAMETER stop "<|im_end|>"\nPARAMETER stop """a "b"\nc"""\nPARAMETER temperature 0\n',
    );
    // Ollama's parser knows no escapes, so a value holding """ is left out rather than written broken.
    expect(
      ollamaModelfile({
        from: './m.gguf',
        style: { ...style, system: 'say """hi"""' },
        chat: null,
        bosText: null,
        separator: '\n',
        stops: [],
      }).text,
    ).toMatch(/^# The system message holds """/m);
  });
});
