/**
 * The model card (README.md) an adapter is published with: YAML front matter the Hub reads (base_model,
 * library_name: peft, tags), then what webtune knows of it — the base model, the dataset's name (never its
 * rows, unless the person chose to publish the file), how prompts were formatted, the settings, the losses,
 * the latest evaluation — and how to load it with PEFT and with webtune. The person edits it before upload.
 */
import type { PromptStyle } from '../data/chat-prompt';
import type { EvaluationScores, EvaluationSummary } from '../store/adapters';
import { isHubId } from '../hub/resolve';
import { promptAdvice } from './readme';

export interface CardFacts {
  /** owner/name on the Hub. */
  repo: string;
  name: string;
  baseModel: string;
  datasetName: string;
  settings: unknown;
  trainLoss: number | null;
  valLoss: number | null;
  promptStyle?: PromptStyle | null;
  evaluation?: EvaluationSummary;
  /** The dataset file's path in the repository when the person chose to publish it; null otherwise. */
  datasetFile: string | null;
}

const figure = (x: number | null | undefined) =>
  x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(3);
const percent = (x: number | null) => (x === null || !Number.isFinite(x) ? '—' : `${(x * 100).toFixed(1)}%`);
/** A YAML scalar that is always a string (JSON's quoting is valid YAML). */
const yamlString = (text: string) => JSON.stringify(text);

function settingLines(settings: unknown): string[] {
  const s = (typeof settings === 'object' && settings !== null ? settings : {}) as Record<string, unknown>;
  const names: [string, string][] = [
    ['rank', 'LoRA rank'],
    ['alpha', 'LoRA alpha'],
    ['targets', 'adapted projections'],
    ['epochs', 'epochs'],
    ['learningRate', 'learning rate'],
    ['batchSize', 'batch size'],
    ['maxLength', 'tokens per example'],
  ];
  return names.flatMap(([key, label]) => {
    const value = s[key];
    if (value === undefined || value === null) return [];
    return [`| ${label} | ${Array.isArray(value) ? value.join(', ') : String(value)} |`];
  });
}

function evaluationTable(e: EvaluationSummary): string {
  const row = (label: string, r: EvaluationScores) =>
    `| ${label} | ${percent(r.exact_match)} | ${percent(r.token_accuracy)} | ${percent(r.label_accuracy)} | ${figure(r.loss)} |`;
  const rows =
    e.split === 'validation'
      ? `the ${e.examples} rows held out of ${e.datasetName ?? 'the dataset'} when it was trained`
      : `all ${e.examples} rows of ${e.datasetName ?? 'the dataset'} (not held out)`;
  return [
    `Evaluated on ${rows}, ${new Date(e.evaluatedAt).toISOString().slice(0, 10)}:`,
    '',
    '| model | exact match | token accuracy | label accuracy | loss |',
    '| --- | --- | --- | --- | --- |',
    row('base model', e.base),
    row(`base, ${e.shots} examples in the prompt`, e.fewShot),
    row('with this adapter', e.tuned),
  ].join('\n');
}

export function hubModelCard(facts: CardFacts): string {
  const { repo, baseModel } = facts;
  const dataset = facts.datasetName
    ? facts.datasetFile
      ? `\`${facts.datasetName}\`, published in this repository as \`${facts.datasetFile}\``
      : `\`${facts.datasetName}\` (not published: only its name is given here)`
    : 'not known (the adapter was imported)';
  const settings = settingLines(facts.settings);
  // A model loaded from a folder has no Hub id: the card says so rather than linking to nothing.
  const onHub = isHubId(baseModel);
  const base = onHub
    ? `[\`${baseModel}\`](https://huggingface.co/${baseModel})`
    : `\`${baseModel}\` (a local model folder: put its Hub id here and in \`base_model\`)`;
  return `---
${onHub ? `base_model: ${yamlString(baseModel)}\n` : ''}library_name: peft
pipeline_tag: text-generation
tags:
  - lora
  - peft
  - webtune
---

# ${facts.name}

A LoRA adapter for ${base}, fine-tuned in the browser with
webtune, in Hugging Face PEFT's layout (\`adapter_config.json\`, \`adapter_model.safetensors\`).

- Base model: \`${baseModel}\`
- Dataset: ${dataset}
- Final loss: training ${figure(facts.trainLoss)}, validation ${figure(facts.valLoss)}

## Prompt format

${promptAdvice(facts.promptStyle)}
${settings.length ? `\n## Training settings\n\n| setting | value |\n| --- | --- |\n${settings.join('\n')}\n` : ''}
## Evaluation

${facts.evaluation ? evaluationTable(facts.evaluation) : 'Not evaluated in webtune yet.'}

## Use it with PEFT

\`\`\`python
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel

base = AutoModelForCausalLM.from_pretrained("${baseModel}")
tokenizer = AutoTokenizer.from_pretrained("${baseModel}")
model = PeftModel.from_pretrained(base, "${repo}")
\`\`\`

## Use it with webtune

On the page: load \`${baseModel}\`, then in 6 · Export choose "Add from the Hub" and enter \`${repo}\`.
On the command line:

\`\`\`sh
npx webtune generate --model ${baseModel} --adapter ${repo} --prompt "…"
\`\`\`
`;
}
