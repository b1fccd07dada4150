/**
 * The example datasets built into the page ("Try an example"), so a newcomer can train and compare without a
 * file of their own. The files are in public/examples/: served from the page's own origin with the site (so
 * they work wherever the site does, offline included), and downloadable as a model to copy.
 */
export interface BuiltinExample {
  /** The file name, under public/examples/; also the name the dataset is stored and trained under. */
  file: string;
  /** The button's words: what the model learns to do. */
  title: string;
  /** One sentence on what the example teaches. */
  description: string;
  /** The layout, as the empty Data step describes it. */
  layout: string;
}

export const BUILTIN_EXAMPLES: BuiltinExample[] = [
  {
    file: 'support-tickets.csv',
    title: 'Route support tickets',
    description:
      'Sorts a customer’s message into one of four departments (Billing, Shipping, Technical, Account): a few labels learned from a handful of examples each.',
    layout: 'CSV · prompt, completion',
  },
  {
    file: 'product-questions.jsonl',
    title: 'Answer product questions',
    description:
      'Answers questions about Lumi, a made-up reading lamp, in one short friendly house style: the model picks up facts and a tone of voice.',
    layout: 'JSON Lines · question, answer',
  },
  {
    file: 'pirate-guide.jsonl',
    title: 'Chat as a museum guide',
    description:
      'Captain Maren guides visitors round a harbour museum in a light pirate voice: a chat persona from system, user and assistant messages.',
    layout: 'JSON Lines · messages',
  },
];

/** Where the page fetches an example from: its own origin, under the site's base path. */
export function exampleUrl(example: BuiltinExample): string {
  return `${import.meta.env.BASE_URL}examples/${example.file}`;
}

/**
 * One short example of each layout webtune recognises by its column names, as the empty Data step shows them.
 */
export interface LayoutSample {
  name: string;
  /** A file name with the extension the sample is read as. */
  fileName: string;
  text: string;
}

export const LAYOUT_SAMPLES: LayoutSample[] = [
  {
    name: 'CSV with prompt and completion columns',
    fileName: 'sample.csv',
    text: 'prompt,completion\nWhere is my parcel?,Shipping',
  },
  {
    name: 'JSON Lines with prompt and completion',
    fileName: 'sample.jsonl',
    text: '{"prompt": "Where is my parcel?", "completion": "Shipping"}',
  },
  {
    name: 'JSON Lines with a chat',
    fileName: 'sample.jsonl',
    text: '{"messages": [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Ahoy, matey!"}]}',
  },
  {
    name: 'Instruction, input and output',
    fileName: 'sample.jsonl',
    text: '{"instruction": "Translate to French", "input": "Good morning", "output": "Bonjour"}',
  },
];
