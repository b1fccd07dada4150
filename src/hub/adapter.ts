/**
 * A PEFT adapter by Hub id (`user/adapter`, any revision): adapter_config.json, then
 * adapter_model.safetensors, cached on the device like a model's files and bounded like an imported zip —
 * the config at most 1 MB, the weights at most what a LoRA of the config's rank can need for the loaded
 * model — refused from the size the Hub announces, or the moment a download passes it. What comes back
 * is checked against the model by the caller exactly as an imported zip is.
 */
import { CONFIG_FILE, WEIGHTS_FILE } from '../formats/adapter-files';
import {
  checkAdapterWeightsSize,
  formatSize,
  GENERIC_MAX_WEIGHTS_BYTES,
  maxAdapterWeightsBytes,
  MAX_CONFIG_BYTES,
  type AdapterModel,
} from '../formats/adapter-limits';
import { AdapterFormatError, readAdapterConfig } from '../formats/peft';
import { downloadFile, type DownloadOptions } from './download';
import { modelKey } from './model';
import {
  checkHubId,
  DEFAULT_ENDPOINT,
  DEFAULT_REVISION,
  HubError,
  normalizeEndpoint,
  resolveUrl,
} from './resolve';
import type { FileStore } from './store';

export interface HubAdapterOptions extends DownloadOptions {
  endpoint?: string;
  revision?: string;
  store: FileStore;
  /** The loaded model, which bounds the weights (the generic cap without one). */
  model?: AdapterModel;
}

export interface HubAdapterFiles {
  id: string;
  revision: string;
  endpoint: string;
  /** adapter_config.json's text and adapter_model.safetensors' bytes, exactly as the Hub sent them. */
  configBytes: Uint8Array;
  weightsBytes: Uint8Array;
  /** Both files came from the device's cache. */
  fromCache: boolean;
}

/** Where the adapter came from, as the library shows it: `hf:user/adapter@revision`. */
export const hubSource = (id: string, revision: string) =>
  `hf:${id}${revision === DEFAULT_REVISION ? '' : `@${revision}`}`;

export async function fetchHubAdapter(rawId: string, options: HubAdapterOptions): Promise<HubAdapterFiles> {
  let id: string;
  try {
    id = checkHubId(rawId);
  } catch {
    throw new HubError(
      `"${rawId}" is not an adapter id. An adapter id looks like owner/name, for example someone/smollm2-tickets.`,
    );
  }
  const endpoint = normalizeEndpoint(options.endpoint ?? DEFAULT_ENDPOINT);
  const revision = options.revision?.trim() || DEFAULT_REVISION;
  const { store, model } = options;
  const folder = modelKey(endpoint, id, revision, Boolean(options.token));
  let fromCache = true;

  const fetchFile = async (file: string, limit: NonNullable<DownloadOptions['limit']>) => {
    const key = `${folder}/${file}`;
    const cached = await store.size(key);
    if (cached !== null && cached > limit.bytes) {
      // Cached for another model: too large for this one, and refused just the same.
      throw limit.refuse(cached);
    }
    if (cached === null) {
      fromCache = false;
      try {
        await downloadFile(
          { url: resolveUrl(endpoint, id, revision, file), key, id, file, revision },
          store,
          { ...options, limit },
        );
      } catch (error) {
        if (error instanceof HubError && (error.status === 404 || error.code === 'RepoNotFound'))
          throw new HubError(
            `${id}${revision === DEFAULT_REVISION ? '' : ` (revision ${revision})`} has no ${file}, or does not ` +
              'exist: it is not a PEFT adapter repository. Check the id; an adapter repository holds ' +
              `${CONFIG_FILE} and ${WEIGHTS_FILE}.`,
            404,
          );
        throw error;
      }
    }
    const bytes = await store.read(key);
    if (!bytes)
      throw new HubError(
        `${file} of ${id} could not be read back from this device's storage. Free some space.`,
      );
    return bytes;
  };

  const configBytes = await fetchFile(CONFIG_FILE, {
    bytes: MAX_CONFIG_BYTES,
    refuse: (size) =>
      new AdapterFormatError(
        `${CONFIG_FILE} of ${id} is ${formatSize(size)} or more, but an adapter's config is at most ` +
          `${formatSize(MAX_CONFIG_BYTES)}, so it is not a PEFT adapter; check the id.`,
      ),
  });
  const settings = readAdapterConfig(new TextDecoder().decode(configBytes));
  // A rank wider than the model is refused here, before any weights are downloaded.
  checkAdapterWeightsSize(0, settings, model);
  const weightsBytes = await fetchFile(WEIGHTS_FILE, {
    bytes: model ? maxAdapterWeightsBytes(model, settings.r) : GENERIC_MAX_WEIGHTS_BYTES,
    refuse: (size) => {
      try {
        checkAdapterWeightsSize(size, settings, model, `${WEIGHTS_FILE} of ${id} is at least`);
      } catch (error) {
        return error as Error;
      }
      return new AdapterFormatError(`${WEIGHTS_FILE} of ${id} is too large to be an adapter for this model.`);
    },
  });
  return { id, revision, endpoint, configBytes, weightsBytes, fromCache };
}
