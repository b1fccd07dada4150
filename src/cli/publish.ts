/**
 * `webtune publish`: an adapter (a PEFT zip or folder) to a new repository on the Hub, private unless
 * --public, with the model card webtune writes from what the adapter remembers (or --card FILE). Its two
 * PEFT files go byte for byte as they are; --dry-run prints the card and what would be sent, and sends
 * nothing. Running the command is the press of the button: nothing else here talks to the Hub.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CONFIG_FILE, WEIGHTS_FILE } from '../formats/adapter-files';
import { readAdapterInfo } from '../formats/adapter-info';
import { formatSize } from '../formats/adapter-limits';
import { hubModelCard } from '../formats/hub-card';
import { readAdapterFiles, readAdapterZip, type AdapterWeights } from '../formats/peft';
import { inflateEntry, zipEntries } from '../formats/zip-entries';
import { publishFiles, type PublishFile } from '../hub/publish';
import { normalizeEndpoint } from '../hub/resolve';
import { readEnvironment } from '../node/environment';
import { parse, required, type Options } from './args';
import { CliError } from './errors';
import { readCliToken, tokenForEndpoint } from './hub-token';
import type { Output } from './output';

export const PUBLISH_HELP = `webtune publish --adapter ADAPTER.zip|DIR --repo OWNER/NAME [options] [--json]

Creates a new repository on the Hugging Face Hub and uploads the adapter's adapter_config.json and
adapter_model.safetensors, as they are, with a model card (README.md). Needs a token with write permission:
HF_TOKEN, or the file huggingface-cli login writes. A repository that exists already is refused.
  --repo OWNER/NAME       the new repository: your user name or an organisation you may write to
  --public                make it public (default: private)
  --card FILE             the model card to send instead of the one webtune writes
  --dry-run               print the card and what would be sent, and send nothing
  --hf-endpoint URL       the Hub or a mirror (default $HF_ENDPOINT or https://huggingface.co)
  --send-token-to URL     send the token to this endpoint, which is not huggingface.co
--json prints {"url","commit"} ({"card","files"} with --dry-run)`;

const OPTIONS: Options = {
  adapter: { type: 'string' },
  repo: { type: 'string' },
  public: { type: 'boolean' },
  card: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'hf-endpoint': { type: 'string' },
  'send-token-to': { type: 'string' },
};

/**
 * The adapter's two PEFT files as they are, and the adapter read from them (checked and bounded as an import
 * reads it, so only an adapter is ever published).
 */
function readSource(source: string): { files: PublishFile[]; weights: AdapterWeights } {
  if (!fs.existsSync(source)) throw new CliError(`Adapter not found: ${source}. Pass a PEFT zip or folder.`);
  if (fs.statSync(source).isDirectory()) {
    const files = [CONFIG_FILE, WEIGHTS_FILE].map((file) => {
      const full = path.join(source, file);
      if (!fs.existsSync(full))
        throw new CliError(`${source} is not a PEFT adapter folder: it has no ${file}.`);
      return { path: file, bytes: new Uint8Array(fs.readFileSync(full)) };
    });
    return { files, weights: readAdapterFiles(new TextDecoder().decode(files[0].bytes), files[1].bytes) };
  }
  const zip = new Uint8Array(fs.readFileSync(source));
  const weights = readAdapterZip(zip);
  const entries = zipEntries(zip).filter((e) => !e.name.startsWith('__MACOSX/'));
  const files = [CONFIG_FILE, WEIGHTS_FILE].map((file) => ({
    path: file,
    bytes: inflateEntry(
      zip,
      entries.find((e) => e.name.split('/').pop() === file)!,
    ),
  }));
  return { files, weights };
}

/** The card webtune writes from what the adapter remembers (its run's details when webtune trained it). */
function generatedCard(weights: AdapterWeights, repo: string, source: string): string {
  const info = readAdapterInfo(weights.metadata);
  return hubModelCard({
    repo,
    name: info?.name || path.basename(source, '.zip'),
    baseModel: info?.modelName || weights.config.base_model_name_or_path || 'the base model',
    datasetName: info?.datasetName ?? '',
    settings: info?.settings ?? { rank: weights.config.r, alpha: weights.config.lora_alpha },
    trainLoss: info?.trainLoss ?? null,
    valLoss: info?.valLoss ?? null,
    promptStyle: info?.promptStyle ?? null,
    datasetFile: null,
  });
}

export async function publishCommand(argv: string[], out: Output): Promise<void> {
  const values = parse(argv, OPTIONS, 'publish');
  if (values.help) return out.help(PUBLISH_HELP);
  const source = required(values, 'adapter', 'publish');
  const repo = required(values, 'repo', 'publish');
  const environment = readEnvironment();
  let endpoint: string;
  try {
    endpoint = normalizeEndpoint((values['hf-endpoint'] as string | undefined) ?? environment.hubEndpoint);
  } catch (error) {
    throw new CliError(`--hf-endpoint: ${(error as Error).message}`);
  }
  let files: PublishFile[];
  let card: string;
  try {
    const read = readSource(source);
    files = read.files;
    card = values.card
      ? fs.readFileSync(values.card as string, 'utf8')
      : generatedCard(read.weights, repo, source);
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`Could not publish ${source}: ${(error as Error).message}`);
  }
  const all = [...files, { path: 'README.md', bytes: new TextEncoder().encode(card) }];
  const visibility = values.public ? 'public' : 'private';
  const listing = all.map((f) => `${f.path} (${formatSize(f.bytes.byteLength)})`).join(', ');
  if (values['dry-run']) {
    out.progress(`would send to ${endpoint}, new ${visibility} repository ${repo}: ${listing}`);
    return out.result(
      { card, files: all.map((f) => ({ path: f.path, bytes: f.bytes.byteLength })) },
      () => card,
    );
  }
  const token = tokenForEndpoint(
    endpoint,
    values['send-token-to'] as string | undefined,
    environment,
    (line) => out.progress(line),
  );
  if (!token)
    throw new CliError(
      readCliToken(environment)
        ? `Publishing to ${endpoint} needs your token, which goes only to huggingface.co unless --send-token-to names ${endpoint}.`
        : 'Publishing needs a Hugging Face token with write permission: set HF_TOKEN, or run huggingface-cli login.',
    );
  out.progress(`sending to ${endpoint}, new ${visibility} repository ${repo}: ${listing}`);
  try {
    const published = await publishFiles({
      repo,
      private: !values.public,
      files: all,
      token,
      endpoint,
      onProgress: (event) => {
        if (event.kind === 'phase') out.progress(`publish: ${event.phase}`);
      },
    });
    out.result(published, () => `published ${published.url} (commit ${published.commit})`);
  } catch (error) {
    throw new CliError((error as Error).message);
  }
}
