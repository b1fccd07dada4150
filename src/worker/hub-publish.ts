/**
 * Publishing a library adapter: first a draft of exactly what would be sent (the PEFT files, the generated
 * model card, the dataset's file only if the person ticks it), then, on the person's press, the upload
 * (hub/publish.ts). The adapter's files go byte for byte as they are in its library zip.
 */
import { CONFIG_FILE, WEIGHTS_FILE } from '../formats/adapter-files';
import { slug } from '../formats/export-readme';
import { hubModelCard } from '../formats/hub-card';
import { zipEntries, inflateEntry } from '../formats/zip-entries';
import { publishFiles, type PublishFile, type Published, type PublishProgress } from '../hub/publish';
import { getAdapter, type AdapterRecord } from '../store/adapters';
import { getDataset } from '../store/datasets';
import type { HubAccounts } from './hub-account';
import type { PublishAdapterRequest, PublishDraft } from './protocol-hub';

async function adapterRecord(id: string): Promise<AdapterRecord> {
  const record = await getAdapter(id);
  if (!record) throw new Error('That adapter is no longer saved on this device; pick another one.');
  return record;
}

/** The adapter's two PEFT files, as stored in its library zip. */
function peftFiles(record: AdapterRecord): PublishFile[] {
  const entries = zipEntries(record.zip);
  return [CONFIG_FILE, WEIGHTS_FILE].map((name) => {
    const entry = entries.find((e) => e.name.split('/').pop() === name);
    if (!entry) throw new Error(`The saved adapter "${record.name}" has no ${name}; import it again.`);
    return { path: name, bytes: inflateEntry(record.zip, entry) };
  });
}

/** The dataset's file under data/, when it is still on this device. */
async function datasetFile(record: AdapterRecord): Promise<PublishFile | null> {
  if (!record.datasetId) return null;
  const dataset = await getDataset(record.datasetId).catch(() => undefined);
  if (!dataset) return null;
  return { path: `data/${dataset.fileName.split(/[\\/]/).pop() || 'dataset'}`, bytes: dataset.bytes };
}

function card(record: AdapterRecord, repo: string, dataset: string | null): string {
  return hubModelCard({
    repo,
    name: record.name,
    baseModel: record.modelName,
    datasetName: record.datasetName,
    settings: record.settings,
    trainLoss: record.trainLoss,
    valLoss: record.valLoss,
    promptStyle: record.promptStyle,
    evaluation: record.evaluation,
    datasetFile: dataset,
  });
}

export async function publishDraft(
  accounts: HubAccounts,
  adapterId: string,
  endpoint: string,
): Promise<PublishDraft> {
  const { account } = await accounts.require(endpoint);
  const record = await adapterRecord(adapterId);
  const repo = `${account.name}/${slug(record.name)}`;
  const dataset = await datasetFile(record);
  return {
    repo,
    card: card(record, repo, null),
    files: [...peftFiles(record), { path: 'README.md', bytes: new Uint8Array() }].map((f) => ({
      path: f.path,
      bytes: f.bytes.byteLength,
    })),
    dataset: dataset && { path: dataset.path, bytes: dataset.bytes.byteLength },
    endpoint: account.endpoint,
    account: account.name,
  };
}

export class Publisher {
  private abort: AbortController | null = null;

  constructor(
    private readonly accounts: HubAccounts,
    private readonly fetchImpl?: typeof fetch,
  ) {}

  async publish(
    request: PublishAdapterRequest,
    endpoint: string,
    onProgress: (progress: PublishProgress) => void,
  ): Promise<Published> {
    if (this.abort) throw new Error('An adapter is being published already; wait for it or cancel it.');
    const abort = (this.abort = new AbortController());
    try {
      const { token } = await this.accounts.require(endpoint);
      const record = await adapterRecord(request.adapterId);
      const dataset = request.includeDataset ? await datasetFile(record) : null;
      if (request.includeDataset && !dataset)
        throw new Error(
          `The dataset "${record.datasetName}" is no longer on this device, so it cannot be published; untick it.`,
        );
      const files = [
        ...peftFiles(record),
        { path: 'README.md', bytes: new TextEncoder().encode(request.card) },
        ...(dataset ? [dataset] : []),
      ];
      return await publishFiles({
        repo: request.repo,
        private: request.private,
        files,
        token,
        endpoint,
        signal: abort.signal,
        fetch: this.fetchImpl,
        onProgress,
      });
    } finally {
      this.abort = null;
    }
  }

  cancel(): boolean {
    this.abort?.abort();
    return this.abort !== null;
  }
}
