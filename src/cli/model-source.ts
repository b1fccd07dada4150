/**
 * What --model names: a model folder on disk, or a Hugging Face Hub id (owner/name) downloaded into
 * the cache (~/.cache/webtune) on first use and read from there afterwards, with no network.
 */
import fs from 'node:fs';
import type { ModelFiles } from '../engine/load';
import { fetchHubModel } from '../hub/model';
import { DEFAULT_REVISION, isHubId, normalizeEndpoint } from '../hub/resolve';
import { CliError } from './errors';
import { readEnvironment } from '../node/environment';
import { FsStore } from './fs-store';
import { tokenForEndpoint } from './hub-token';
import { openModelFolder } from '../node/model-folder';

export interface ModelSourceOptions {
  /** --hf-endpoint, else $HF_ENDPOINT, else huggingface.co. */
  endpoint?: string;
  revision?: string;
  cacheDir?: string;
  progress?: (line: string) => void;
  /** --send-token-to: the one non-Hub endpoint the person lets the token go to. */
  sendTokenTo?: string;
}

/** Options every command that takes --model accepts. */
export const MODEL_SOURCE_OPTIONS = {
  'hf-endpoint': { type: 'string' as const },
  revision: { type: 'string' as const },
  'send-token-to': { type: 'string' as const },
};
export const MODEL_SOURCE_HELP = `  --model DIR|ID          a model folder, or a Hugging Face Hub id (owner/name), cached in
                          $XDG_CACHE_HOME/webtune (~/.cache/webtune) and loaded offline once cached
  --hf-endpoint URL       Hub or mirror to download from (default $HF_ENDPOINT or https://huggingface.co)
  --revision REV          branch or commit of a Hub model (default main)
  --send-token-to URL     send your token (HF_TOKEN, or huggingface-cli login's file) to this endpoint,
                          which is not huggingface.co; without it the token goes to huggingface.co only`;

/** The source options from parsed --hf-endpoint / --revision, with progress on stderr. */
export function sourceOptions(
  values: Record<string, unknown>,
  out: { progress(line: string): void },
): ModelSourceOptions {
  const flag = values['hf-endpoint'] as string | undefined;
  let endpoint: string | undefined;
  try {
    // Checked before anything else runs: an endpoint with a path could stand any files in for a model.
    endpoint = flag === undefined ? undefined : normalizeEndpoint(flag);
  } catch (error) {
    throw new CliError(`--hf-endpoint: ${(error as Error).message}`);
  }
  return {
    endpoint,
    revision: values.revision as string | undefined,
    sendTokenTo: values['send-token-to'] as string | undefined,
    progress: (line) => out.progress(line),
  };
}

const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MB`;

/**
 * The model's files with its weights opened, not read (a folder's files or the cache's, by file descriptor):
 * the caller closes them with closeWeights once the model is built or the export written.
 */
export async function readModel(model: string, options: ModelSourceOptions = {}): Promise<ModelFiles> {
  if (fs.existsSync(model) || !isHubId(model)) return openModelFolder(model);
  const environment = readEnvironment();
  const endpoint = options.endpoint || environment.hubEndpoint;
  const token = tokenForEndpoint(endpoint, options.sendTokenTo, environment, options.progress ?? (() => {}));
  let lastLine = 0;
  try {
    const hub = await fetchHubModel(model, {
      endpoint,
      revision: options.revision ?? DEFAULT_REVISION,
      store: new FsStore(options.cacheDir ?? environment.cacheDir),
      token,
      onProgress: ({ file, done, total, bytesPerSecond, resumedFrom }) => {
        // Small files (config, tokenizer) come and go in a blink: report the weights.
        if ((total ?? done) < 256 * 1024) return;
        const now = Date.now();
        if (now - lastLine < 1000 && done !== total) return;
        lastLine = now;
        options.progress?.(
          `downloading ${file}: ${mb(done)}${total !== null ? ` of ${mb(total)}` : ''} (${mb(bytesPerSecond)}/s)${resumedFrom ? `, resumed at ${mb(resumedFrom)}` : ''}`,
        );
      },
    });
    if (hub.fromCache)
      options.progress?.(`${model}: read from the cache (${mb(hub.bytes)}), no network used`);
    return {
      name: hub.name,
      config: hub.config,
      tokenizerJson: hub.tokenizerJson,
      tokenizerConfig: hub.tokenizerConfig,
      weights: hub.weights,
    };
  } catch (error) {
    throw new CliError(`${(error as Error).message}`);
  }
}
