/** The README.md that travels inside an adapter zip: what it is and how to use it with PEFT. */
import type { AdapterConfig } from './peft';

export function adapterReadme(config: AdapterConfig, name: string): string {
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

Prompts must be formatted as they were during training (the same template or chat template).
`;
}
