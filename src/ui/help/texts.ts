/**
 * Plain-language help for every knob and figure on the page, written for someone who has never trained a
 * model: what it is, and (`fix`) what to change when things go wrong.
 */
export interface HelpEntry {
  title: string;
  text: string;
  fix?: string;
}

export const HELP = {
  model: {
    title: 'the model',
    text: 'A small language model that already knows how to write. Training does not replace it: it learns a small add-on (an adapter) that steers it towards your examples.',
    fix: 'Bigger models learn more but need more memory and time. Start with the default; if the page warns about memory, pick a smaller one.',
  },
  dataset: {
    title: 'the examples',
    text: 'Each row is one example: what the model reads (the prompt) and what it should write back (the completion). A few dozen good examples already change how the model answers.',
    fix: 'Write completions exactly the way you want answers to look; the model copies their style and length.',
  },
  promptTemplate: {
    title: 'the prompt template',
    text: 'How the columns of a row become the text the model reads. Column names in braces are replaced by the row’s values, e.g. "Ticket: {ticket}".',
  },
  completionTemplate: {
    title: 'the completion template',
    text: 'What the model should learn to write after the prompt, usually one column such as "{answer}". Only this part is trained on.',
  },
  validationSplit: {
    title: 'the validation split',
    text: 'A share of the examples kept aside and never trained on. The loss on them (validation loss) shows whether the model learned the task or just memorised the training rows.',
    fix: 'With very few examples, keep it small (0.1) or at 0; with hundreds, 0.1 to 0.2 is good.',
  },
  documents: {
    title: 'documents',
    text: 'A .txt or .md file (or several dropped together) teaches the model the text itself: no prompts, no answers. Each document is cut into windows of max length tokens, and every token is learned once. Some windows are held out to measure how well the model reads text like yours (its perplexity).',
    fix: 'The model learns the style and facts of the text, not to answer questions about it. Markdown headings start new windows where that keeps a section whole.',
  },
  overlap: {
    title: 'the overlap',
    text: 'How many tokens each window of a document repeats from the one before, as context only: the start of a window is then not read without what came before it. Repeated tokens are not learned twice.',
    fix: 'More overlap costs more time per window; 0 is not possible (a window’s first token is always predicted from the one before). At most half the max length.',
  },
  maxLength: {
    title: 'max length',
    text: 'The longest example, in tokens (pieces of words), that training reads. Longer examples are cut at this length.',
    fix: 'Out of memory: lower it. Answers cut short: raise it.',
  },
  epochs: {
    title: 'epochs',
    text: 'How many times training goes through all your examples. More epochs learn the examples more closely.',
    fix: 'Loss still falling at the end: add epochs. Validation loss rising while training loss falls: the model is memorising; use fewer epochs.',
  },
  learningRate: {
    title: 'the learning rate',
    text: 'How big a step the adapter takes after each batch. Too small learns slowly; too large jumps around and can make the loss worse.',
    fix: 'Loss flat: raise it (for example ×3). Loss rising or jumping, or "not a number": lower it (÷3).',
  },
  rank: {
    title: 'rank',
    text: 'How much the adapter can learn: the size of the small matrices added to the model. 8 suits most tasks; 16 or 32 for harder ones.',
    fix: 'Out of memory or slow: lower it. The model does not pick up the task after many epochs: raise it.',
  },
  alpha: {
    title: 'alpha',
    text: 'How strongly the adapter’s changes count. Usually twice the rank; leave it unless you know why.',
  },
  dropout: {
    title: 'dropout',
    text: 'Randomly ignores a share of the adapter’s inputs while training, which helps against memorising small datasets.',
  },
  targets: {
    title: 'target modules',
    text: 'Which parts of each layer of the model get an adapter: the attention projections (q, k, v, o) decide what the model looks at, the MLP ones (gate, up, down) what it does with it. More targets learn more and cost more memory.',
    fix: 'Quick try: q and v. Thorough: all seven.',
  },
  batchSize: {
    title: 'batch size',
    text: 'How many examples training looks at before each step. Larger batches give smoother progress but need more memory.',
    fix: 'Out of memory: lower it, or turn on Recompute activations.',
  },
  gradAccum: {
    title: 'gradient accumulation',
    text: 'Adds up several batches before one step, so a small batch behaves like a large one without its memory.',
  },
  warmup: {
    title: 'warm-up steps',
    text: 'The first steps use a smaller learning rate that rises to the full one, which keeps the start of training calm.',
  },
  recompute: {
    title: 'recompute activations',
    text: 'Saves memory by recomputing parts of the model during training instead of keeping them, at about a fifth more time. Other tools call it gradient checkpointing.',
    fix: 'Out of memory: turn it on.',
  },
  weights: {
    title: 'base weights',
    text: 'How the model you fine-tune is held in memory while it stays frozen; the adapter itself always trains in 32 bits. 32-bit is the model exactly; 16-bit is the checkpoint as published (Hub models ship in 16 bits), half the memory; 8-bit (q8_0, as llama.cpp) halves it again and changes answers very little; 4-bit (nf4, as QLoRA) needs an eighth of 32-bit and changes them a little more: it is what lets a 1.5B model train in a browser tab. Automatic takes the widest that fits this device. Changing it loads the model again.',
    fix: 'Out of memory: choose 8-bit or 4-bit.',
  },
  keep: {
    title: 'the adapter to keep',
    text: 'Best keeps the weights from the moment the validation loss was lowest; last keeps the final ones.',
  },
  loss: {
    title: 'loss',
    text: 'How surprised the model is by the answers in your examples: lower is better. It should fall quickly at first, then level off.',
    fix: 'Flat from the start: raise the learning rate. Rising or "not a number": lower the learning rate.',
  },
  validationLoss: {
    title: 'validation loss',
    text: 'The same measure on the examples kept aside. If it rises while the training loss keeps falling, the model is memorising instead of learning.',
    fix: 'Rising: fewer epochs, a lower learning rate, or more examples.',
  },
  tokensPerSecond: {
    title: 'tokens per second',
    text: 'How fast training reads your text (a token is a word or a piece of one). It depends on this device and the compute backend shown at the top.',
  },
  estimate: {
    title: 'the estimate',
    text: "First from this device's speed and the work your data needs, at once; then from one real training step on your data, scaled to the whole run. During training the time left comes from the steps themselves.",
  },
  exactMatch: {
    title: 'exact match',
    text: 'The share of held-out examples where the answer was exactly the expected one.',
  },
  tokenAccuracy: {
    title: 'token accuracy',
    text: 'The share of the expected answer’s tokens the model would have guessed right, one at a time. It shows progress before answers are exactly right.',
  },
  perplexity: {
    title: 'perplexity',
    text: 'How surprised the model is by ordinary text. If it rises a lot with the adapter, the adapter made the model forget some general writing.',
  },
  chatTemplate: {
    title: 'the chat template',
    text: 'Models made for chatting expect messages wrapped in their own markers (who is speaking, where a turn ends). With this on, your examples are wrapped the same way, so the adapter works in a chat.',
    fix: 'Leave it on for a chat model. Turn it off to train on plain text, for example to continue stories.',
  },
  labels: {
    title: 'labels',
    text: 'When the answers are a few fixed words (such as departments), the task is sorting, and the Evaluate step reports how often the adapter picks the right one. Each label needs several examples, and the held-out examples should include every label.',
    fix: 'A label with far fewer examples than the others is learned poorly: add examples of it.',
  },
  temperature: {
    title: 'temperature',
    text: 'How adventurous the answers are. 0 always picks the likeliest next word, so the same message gives the same answer: best for comparing the two models. Higher values vary more.',
  },
  topP: {
    title: 'top-p',
    text: 'With a temperature above 0, only the likeliest words that together make up this share of the chances are considered. 1 considers all of them.',
  },
  maxNewTokens: {
    title: 'max new tokens',
    text: 'The longest answer, in tokens (pieces of words). An answer also ends when the model writes its end mark or a stop sequence.',
    fix: 'Answers cut short: raise it. The small test model rambles after its answer: that is expected, lower it.',
  },
  ggufPrecision: {
    title: 'GGUF weights',
    text: 'How precisely the llama.cpp / Ollama download stores the model. 16-bit keeps each weight as a half-precision number. 8-bit is llama.cpp’s own Q8_0 format: each group of 32 weights becomes 32 small whole numbers and one scale, so the file is about half the size, and answers differ a little (a word here and there where two were nearly tied).',
    fix: 'Pick 8-bit for a large model or a small device; keep 16-bit when the answers should match this page’s as closely as possible.',
  },
  rslora: {
    title: 'rsLoRA scaling',
    text: 'Scales the adapter by alpha divided by the square root of the rank instead of by the rank, so a high-rank adapter still learns at a useful pace (Kalajdzievski, 2023). It matters from rank 16 or so.',
  },
  pairs: {
    title: 'pairs of answers',
    text: 'Each row is one prompt with two answers: the one you prefer (chosen, green) and a worse one (rejected, red). The model is not shown a single right answer; it learns which of two answers is better, which you can often say long before you could write the perfect one.',
    fix: 'Make the two answers differ in what you care about (tone, correctness, length) and agree in the rest; a pair whose answers are the same teaches nothing and is left out.',
  },
  objective: {
    title: 'what your examples teach',
    text: 'Answers (SFT): the model learns to write the completions, token by token. Preferences: from pairs of answers the model learns to make the chosen one more likely than the rejected one. DPO (Rafailov et al., 2023) compares both with the model before training (the same model with the adapter off, scored once before the first step); ORPO (Hong et al., 2024) needs no such comparison and also trains the chosen answers directly, so it suits a model that has not seen answers like them yet. SFT on a file of pairs trains the chosen answers alone.',
    fix: 'Start with DPO when the model already answers in roughly the right way and you want it to choose better: DPO makes the chosen answer more likely than the rejected one, but does not teach the model to write answers it would not write at all. For that, train Answers (SFT) on the same file first, or use ORPO, which does both. Preference runs take a tenth of SFT’s learning rate (the presets do it).',
  },
  beta: {
    title: 'β',
    text: 'DPO: how far the adapter may move from the base model. A small β (0.1, the usual default) lets the model follow the preference strongly; a larger one (0.5) keeps it closer to how it answered before. ORPO: the weight of the preference term next to learning the chosen answers (λ, 0.1 by default); higher leans more on telling the two answers apart.',
    fix: 'If the answers drift away from sensible text, raise β for DPO (or lower the learning rate); if reward accuracy stays near 50%, lower β or train longer.',
  },
  rewardAccuracy: {
    title: 'reward accuracy',
    text: 'The share of pairs whose chosen answer the adapter has made more likely, relative to the base model, than the rejected one (TRL’s rewards/accuracies; for ORPO, the chosen answer’s mean token log-probability is the higher). At DPO’s first step it is 0: nothing has changed yet. The dots are the held-out pairs, which training never sees.',
    fix: 'Training pairs near 100% and held-out ones far lower: the adapter memorises the pairs. Add pairs, train fewer epochs, or raise β.',
  },
} satisfies Record<string, HelpEntry>;

export type HelpTopic = keyof typeof HELP;
