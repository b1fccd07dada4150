/**
 * The README.md beside an exported GGUF: what each file is and how llama.cpp, Ollama and LM Studio run it.
 */
import type { ExportFormat, ExportInput } from './export-input';
import { promptAdvice } from './readme';

export function ggufReadme(
  input: ExportInput & { format: ExportFormat; dtype: string; templateWritten: boolean },
): string {
  const { name, adapter, format, dtype } = input;
  const base = adapter?.config.base_model_name_or_path || input.files.name;
  const lora = format === 'gguf-lora';
  const model = lora ? 'base.gguf' : 'model.gguf';
  const files = lora
    ? [
        `- \`base.gguf\`: the base model \`${base}\` (${dtype}).`,
        `- \`adapter.gguf\`: the LoRA adapter "${name}", applied on top of base.gguf at run time.`,
      ]
    : [
        `- \`model.gguf\`: ${adapter ? `\`${base}\` with the adapter "${name}" merged into its weights` : `\`${base}\``} (${dtype}); it runs on its own.`,
        ...(adapter
          ? [
              '- `adapter.gguf`: the same adapter alone, for a base GGUF you already have (`--lora adapter.gguf`).',
            ]
          : []),
      ];
  const run = lora ? '-m base.gguf --lora adapter.gguf' : `-m ${model}`;
  return `# ${name} for llama.cpp, Ollama and LM Studio

Exported by webtune.

${files.join('\n')}
- \`Modelfile\`: for Ollama${input.templateWritten ? ', with the prompt template training used' : ' (the chat template could not be written as an Ollama TEMPLATE, so Ollama reads the one inside the GGUF)'}.

## llama.cpp

\`\`\`sh
llama-cli ${run} -cnv                           # chat (the GGUF carries the chat template)
llama-cli ${run} -p "Once upon a time" -n 64 --temp 0   # continue a prompt greedily
llama-server ${run}                             # an OpenAI-compatible server on http://127.0.0.1:8080
\`\`\`

## Ollama

\`\`\`sh
ollama create ${slug(name)} -f Modelfile
ollama run ${slug(name)}
\`\`\`

## LM Studio

Put \`${model}\` in a folder under LM Studio's models folder (My Models → folder icon), or drag it into the app.
${lora ? 'LM Studio does not apply LoRA GGUFs; export with `webtune export --format gguf` for one merged file.\n' : ''}
${adapter ? promptAdvice(input.style) : ''}
`;
}

/** A name Ollama accepts: lower case letters, digits, dashes. */
export function slug(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'webtune-model'
  );
}
