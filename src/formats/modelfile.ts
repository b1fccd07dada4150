/**
 * An Ollama Modelfile for an exported GGUF: FROM (and ADAPTER), the prompt TEMPLATE written in Go's
 * text/template as Ollama reads it, and stop strings, so `ollama create` gives a model that is prompted
 * exactly as webtune trained and chats.
 *
 * A chat template is Jinja, which Ollama does not run. It is translated by rendering it around marker
 * strings: what it writes before and after a system, user and assistant message, at the start, and for
 * the generation prompt. The pieces are then checked by rebuilding several conversations from them; a
 * template whose output depends on more than the role (Qwen3's thinking blocks, for one) fails that check,
 * and the Modelfile leaves TEMPLATE out so Ollama falls back to its own reading of the GGUF's template.
 */
import { messageText, type PromptStyle } from '../data/chat-prompt';
import type { ChatMessage } from '../data/dataset';

export interface ModelfileInput {
  /** The GGUF, relative to the Modelfile: `./model.gguf`. */
  from: string;
  /** A LoRA GGUF on top of `from`. */
  adapter?: string;
  /** How training formatted prompts (null: a base model, prompted as its own chat template or plain text). */
  style: PromptStyle | null;
  /** The model's chat template when prompts go through it. */
  chat: ((messages: ChatMessage[], addGenerationPrompt: boolean) => string) | null;
  /** Text the tokenizer itself puts first (BOS); the runtime adds it, so the template must not. */
  bosText: string | null;
  /** Between a plain prompt and its answer. */
  separator: string;
  /** Strings that end an answer (besides EOS). */
  stops: string[];
}

export interface Modelfile {
  text: string;
  /** The Go template, or null when the chat template could not be translated. */
  template: string | null;
}

/** Literal text in a Go template: `{{` would open an action. */
const literal = (text: string) => text.replaceAll('{{', '{{ "{{" }}');

const MARK = (name: string) => `WEBTUNE0${name}0MARK`;

/** What the user types, through the dataset's prompt template, as a Go expression in literal text. */
function userContent(style: PromptStyle | null, expression: string): string {
  if (!style) return expression;
  const wrapped = messageText(MARK('USER'), style);
  const at = wrapped.indexOf(MARK('USER'));
  return at < 0
    ? expression
    : literal(wrapped.slice(0, at)) + expression + literal(wrapped.slice(at + MARK('USER').length));
}

interface ChatPieces {
  head: string;
  systemBefore: string;
  systemAfter: string;
  userBefore: string;
  userAfter: string;
  assistantBefore: string;
  assistantAfter: string;
  generation: string;
  /**
   * Gemma's way: the system text opens the first user turn (systemBefore holds the turn's opening and
   * systemAfter the separator), so the user message right after it starts without userBefore.
   */
  systemJoinsUser: boolean;
}

function between(text: string, from: string | null, to: string | null): string | null {
  const start = from === null ? 0 : text.indexOf(from);
  if (start < 0) return null;
  const after = from === null ? 0 : start + from.length;
  const end = to === null ? text.length : text.indexOf(to, after);
  return end < 0 ? null : text.slice(after, end);
}

/** The chat template's text around each role's message, or null when it is not that simple. */
export function chatPieces(
  render: NonNullable<ModelfileInput['chat']>,
  bosText: string | null,
): ChatPieces | null {
  const [S, U, A, U2] = ['SYSTEM', 'USER', 'ASSISTANT', 'USERTWO'].map(MARK);
  const strip = (text: string) => (bosText && text.startsWith(bosText) ? text.slice(bosText.length) : text);
  let one: string, oneGen: string, pair: string, three: string, withSystem: string;
  try {
    one = strip(render([{ role: 'user', content: U }], false));
    oneGen = strip(render([{ role: 'user', content: U }], true));
    pair = strip(
      render(
        [
          { role: 'user', content: U },
          { role: 'assistant', content: A },
        ],
        false,
      ),
    );
    three = strip(
      render(
        [
          { role: 'user', content: U },
          { role: 'assistant', content: A },
          { role: 'user', content: U2 },
        ],
        false,
      ),
    );
    withSystem = strip(
      render(
        [
          { role: 'system', content: S },
          { role: 'user', content: U },
        ],
        false,
      ),
    );
  } catch {
    return null;
  }
  const userAfter = between(one, U, null);
  const assistantAfter = between(pair, A, null);
  const userBefore = assistantAfter === null ? null : between(three, A + assistantAfter, U2);
  const beforeUser = between(one, null, U);
  const assistantBefore = userAfter === null ? null : between(pair, U + userAfter, A);
  const systemBefore = between(withSystem, null, S);
  let systemAfter = userBefore === null ? null : between(withSystem, S, userBefore + U);
  let systemJoinsUser = false;
  const joined = between(withSystem, S, U);
  if (systemAfter === null && joined !== null && withSystem === systemBefore + S + joined + U + userAfter) {
    systemAfter = joined;
    systemJoinsUser = true;
  }
  const generation = oneGen.startsWith(one) ? oneGen.slice(one.length) : null;
  if (
    [
      userAfter,
      assistantAfter,
      userBefore,
      beforeUser,
      assistantBefore,
      systemBefore,
      systemAfter,
      generation,
    ].includes(null)
  )
    return null;
  if (!beforeUser!.endsWith(userBefore!)) return null;
  const pieces: ChatPieces = {
    head: beforeUser!.slice(0, beforeUser!.length - userBefore!.length),
    systemBefore: systemBefore!,
    systemAfter: systemAfter!,
    userBefore: userBefore!,
    userAfter: userAfter!,
    assistantBefore: assistantBefore!,
    assistantAfter: assistantAfter!,
    generation: generation!,
    systemJoinsUser,
  };
  // The pieces must rebuild what the template writes, for conversations it was not read from.
  const joinsSystem = (messages: ChatMessage[], i: number) =>
    systemJoinsUser && i === 1 && messages[0].role === 'system';
  const rebuild = (messages: ChatMessage[], addGeneration: boolean) =>
    (messages[0]?.role === 'system' ? '' : pieces.head) +
    messages
      .map((m, i) =>
        m.role === 'system'
          ? pieces.systemBefore + m.content + pieces.systemAfter
          : m.role === 'user'
            ? (joinsSystem(messages, i) ? '' : pieces.userBefore) + m.content + pieces.userAfter
            : pieces.assistantBefore + m.content + pieces.assistantAfter,
      )
      .join('') +
    (addGeneration ? pieces.generation : '');
  const checks: ChatMessage[][] = [
    [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi there' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Name a colour' },
    ],
    [
      { role: 'user', content: 'One' },
      { role: 'assistant', content: 'Two' },
      { role: 'user', content: 'Three' },
      { role: 'assistant', content: 'Four' },
      { role: 'user', content: 'Five' },
    ],
  ];
  for (const messages of checks) {
    for (const addGeneration of [false, true]) {
      let expected: string;
      try {
        expected = strip(render(messages, addGeneration));
      } catch {
        return null;
      }
      if (rebuild(messages, addGeneration) !== expected) return null;
    }
  }
  return pieces;
}

function chatTemplate(p: ChatPieces, style: PromptStyle | null): string {
  // Gemma's: the user message after a system message continues the turn the system text opened.
  const userBefore = p.systemJoinsUser
    ? `{{ if and (eq $i 1) (eq (index $.Messages 0).Role "system") }}{{ else }}${literal(p.userBefore)}{{ end }}`
    : literal(p.userBefore);
  const roles =
    `{{ if eq .Role "system" }}${literal(p.systemBefore)}{{ .Content }}${literal(p.systemAfter)}` +
    `{{ else if eq .Role "user" }}${userBefore}${userContent(style, '{{ .Content }}')}${literal(p.userAfter)}` +
    `{{ else if eq .Role "assistant" }}${literal(p.assistantBefore)}{{ .Content }}${literal(p.assistantAfter)}{{ end }}`;
  const range = p.systemJoinsUser ? '{{ range $i, $_ := .Messages }}' : '{{ range .Messages }}';
  const promptUserBefore = p.systemJoinsUser ? '' : literal(p.userBefore);
  const noSystem = literal(p.head) + (p.systemJoinsUser ? literal(p.userBefore) : '');
  return (
    `{{ if .Messages }}{{ if ne (index .Messages 0).Role "system" }}${literal(p.head)}{{ end }}${range}${roles}{{ end }}${literal(p.generation)}` +
    `{{ else }}{{ if .System }}${literal(p.systemBefore)}{{ .System }}${literal(p.systemAfter)}{{ else }}${noSystem}{{ end }}` +
    `${promptUserBefore}${userContent(style, '{{ .Prompt }}')}${literal(p.userAfter)}${literal(p.generation)}{{ end }}`
  );
}

/** Conversations without a chat template: "System: …\nUser: …\nAssistant: ", as webtune trains them. */
const PLAIN_CONVERSATION =
  '{{ if .Messages }}{{ range .Messages }}{{ if eq .Role "system" }}System: {{ else if eq .Role "user" }}User: {{ else }}Assistant: {{ end }}{{ .Content }}\n{{ end }}' +
  '{{ else }}{{ if .System }}System: {{ .System }}\n{{ end }}User: {{ .Prompt }}\n{{ end }}Assistant: ';

/** The Go template for these prompts, or null when a chat template cannot be translated. */
export function ollamaTemplate(
  input: Pick<ModelfileInput, 'style' | 'chat' | 'bosText' | 'separator'>,
): string | null {
  const { style, chat } = input;
  if (chat) {
    const pieces = chatPieces(chat, input.bosText);
    return pieces ? chatTemplate(pieces, style) : null;
  }
  if (style?.conversation) return PLAIN_CONVERSATION;
  // Text continuation: what is typed is the start of the text.
  if (!style || style.promptTemplate.trim() === '') return '{{ .Prompt }}';
  return userContent(style, '{{ .Prompt }}') + literal(input.separator);
}

/**
 * A Modelfile value as Ollama's parser reads it: it knows no escapes; a value is bare, "quoted" or
 * """triple-quoted""" (which keeps newlines and quotes), and a value holding """ cannot be written at all.
 */
function modelfileValue(text: string): string | null {
  if (text.includes('"""')) return null;
  return /["\s]/.test(text) || text === '' ? `"""${text}"""` : `"${text}"`;
}

export function ollamaModelfile(input: ModelfileInput): Modelfile {
  const template = ollamaTemplate(input);
  const lines = [`FROM ${input.from}`];
  if (input.adapter) lines.push(`ADAPTER ${input.adapter}`);
  const templateValue = template === null ? null : modelfileValue(template);
  if (templateValue !== null) lines.push(`TEMPLATE ${templateValue}`);
  else
    lines.push(
      '# The chat template could not be written for Ollama; it reads the one inside the GGUF instead.',
    );
  const system = input.style?.system ? modelfileValue(input.style.system) : null;
  if (system !== null) lines.push(`SYSTEM ${system}`);
  else if (input.style?.system)
    lines.push('# The system message holds """, which a Modelfile cannot; add it in Ollama instead.');
  for (const stop of input.stops) {
    const value = modelfileValue(stop);
    if (stop.trim() && value !== null) lines.push(`PARAMETER stop ${value}`);
  }
  // webtune's chat and evaluation answer greedily; so does this.
  lines.push('PARAMETER temperature 0');
  return { text: lines.join('\n') + '\n', template: templateValue !== null ? template : null };
}
