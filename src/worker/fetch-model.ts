/**
 * Fetches a model folder in Hugging Face layout from a URL (e.g. `?model=/models/stories260K`). Runs in
 * the worker, so the weights are held once, where they are used.
 */
import { REQUIRED_FILES, type ModelFiles } from '../engine/model-files';

/** Reads a response body into one buffer, reporting bytes as they arrive. */
async function readWithProgress(
  response: Response,
  onBytes: (done: number, total: number | null) => void,
): Promise<Uint8Array> {
  const total = Number(response.headers.get('Content-Length')) || null;
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  // Known length: fill one buffer in place, so the page never holds two copies of the weights.
  let buffer = new Uint8Array(total ?? 1 << 20);
  let done = 0;
  for (;;) {
    const { value, done: finished } = await reader.read();
    if (finished) break;
    if (done + value.byteLength > buffer.byteLength) {
      const grown = new Uint8Array(Math.max(buffer.byteLength * 2, done + value.byteLength));
      grown.set(buffer.subarray(0, done));
      buffer = grown;
    }
    buffer.set(value, done);
    done += value.byteLength;
    onBytes(done, total);
  }
  return done === buffer.byteLength ? buffer : buffer.slice(0, done);
}

export async function fetchModelFiles(
  folderUrl: string,
  onBytes: (done: number, total: number | null) => void = () => {},
): Promise<ModelFiles> {
  const base = folderUrl.endsWith('/') ? folderUrl : `${folderUrl}/`;
  const get = async (file: string) => {
    let response: Response;
    try {
      response = await fetch(new URL(file, new URL(base, location.href)));
    } catch (error) {
      throw new Error(
        `Could not download ${file} from ${base} (${(error as Error).message}). Check the address and your connection.`,
        { cause: error },
      );
    }
    if (!response.ok)
      throw new Error(
        `${base}${file} answered ${response.status} ${response.statusText}. A model folder needs ${REQUIRED_FILES.join(', ')}.`,
      );
    return response;
  };
  const [config, tokenizerJson, tokenizerConfig, weights] = await Promise.all(REQUIRED_FILES.map(get));
  return {
    name: base.split('/').filter(Boolean).pop() ?? 'model',
    config: await config.text(),
    tokenizerJson: await tokenizerJson.text(),
    tokenizerConfig: await tokenizerConfig.text(),
    weights: await readWithProgress(weights, onBytes),
  };
}
