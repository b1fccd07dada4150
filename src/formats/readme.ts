/** The README.md that travels inside an adapter zip: what it is and how to use it with PEFT. */
import type { PromptStyle } from '../data/chat-prompt';
import { describeObjective, type RunObjective } from './adapter-info';
import type { AdapterConfig } from './peft';

/** What the run learned from, in a sentence: its objective, and for DPO and ORPO what β or λ is. */
export function objectiveAdvice(objective: RunObjective | undefined): string {
  if (!objective || objective.name === 'sft')
    return 'It was trained with SFT (supervised fine-tuning): to give the answers of its examples.';
  const pairs = 'pairs of a chosen and a rejected answer to the same prompt';
  return objective.name === 'dpo'
    ? `It was trained with ${describeObjective(objective)} on ${pairs}: Direct Preference Optimization (Rafailov et al., 2023), with the base model (the adapter off) as the reference; β sets how far it may move from it (TRL's \`DPOConfig.beta\`).`
    : `It was trained with ${describeObjective(objective)} on ${pairs}: Odds Ratio Preference Optimization (Hong et al., 2024), the chosen answers' likelihood plus λ times the odds-ratio term (TRL's \`ORPOConfig.beta\`), without a reference model.`;
}

/** How training formatted prompts, in words a Python user can follow. */
export function promptAdvice(style: PromptStyle | null | undefined): string {
  if (!style)
    return 'Prompts must be formatted as they were during training (the same template or chat template).';
  const template = style.conversation
    ? 'the conversation'
    : style.promptTemplate === ''
      ? 'the start of the text (no prompt template)'
      : `the prompt template \`${JSON.stringify(style.promptTemplate)}\``;
  const system = style.system ? ` with the system message ${JSON.stringify(style.system)}` : '';
  if (!style.useChatTemplate && !style.conversation && style.promptTemplate === '')
    return 'It was trained to continue text: give it the start of a text, without a chat template.';
  return style.useChatTemplate
    ? `It was trained on ${template} passed through the tokenizer's chat template${system} (\`tokenizer.apply_chat_template(messages, add_generation_prompt=True)\`); prompt it the same way.`
    : `It was trained on ${template} followed by a newline, without a chat template; prompt it the same way and it answers, ending with the end-of-sequence token.`;
}

export function adapterReadme(
  config: AdapterConfig,
  name: string,
  style?: PromptStyle | null,
  objective?: RunObjective,
): string {
  const base = config.base_model_name_or_path || '<the base model>';
  return `# ${name}

A LoRA adapter trained with webtune (rank ${config.r}, alpha ${config.lora_alpha}, on ${config.target_modules.join(', ')})
for the base model \`${base}\`, in Hugging Face PEFT layout.

## Use it with PEFT

Unzip this file into a folder, then:

\`\`\`python
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel

base = AutoModelForCausalLM.from_pretrained("${base}")
tokenizer = AutoTokenizer.from_pretrained("${base}")
model = PeftModel.from_pretrained(base, "path/to/${name}")
model = model.merge_and_unload()  # optional: fold the adapter into the weights
\`\`\`

${promptAdvice(style)}

${objectiveAdvice(objective)}
`;
}
