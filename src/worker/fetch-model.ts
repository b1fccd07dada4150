/**
 * Fetches a model folder in Hugging Face layout from a URL (e.g. `?model=/models/stories260K`). Runs in
 * the worker, so the weights are held once, where they are used: in memory for a small folder, and for a
 * large one (or one of unknown size) in a scratch file of the origin private file system, written as the
 * bytes arrive and read a tensor at a time, so a 3 GB checkpoint is never whole in memory.
 */
import { REQUIRED_FILES, type ModelFiles } from '../engine/model-files';
import type { WeightsFile } from '../engine/weights-source';
import { createScratchFile, scratchAvailable } from './scratch-file';

/** Weights up to this size are read into memory; larger ones go to a scratch file when there is OPFS. */
export const IN_MEMORY_LIMIT = 256 * 2 ** 20;

/** Streams a response body into a scratch file, reporting bytes as they arrive. */
async function streamToScratch(
  body: ReadableStream<Uint8Array>,
  total: number | null,
  onBytes: (done: number, total: number | null) => void,
): Promise<WeightsFile> {
  const scratch = await createScratchFile();
  const reader = body.getReader();
  let done = 0;
  try {
    for (;;) {
      const { value, done: finished } = await reader.read();
      if (finished) break;
      scratch.write(value);
      done += value.byteLength;
      onBytes(done, total);
    }
    if (total !== null && done !== total)
      throw new Error(`the connection closed after ${done} of ${total} bytes of model.safetensors`);
  } catch (error) {
    await scratch.discard();
    throw new Error(`Could not download the model's weights (${(error as Error).message}). Try again.`, {
      cause: error,
    });
  }
  return scratch.finish('model.safetensors');
}

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

/** In memory when small; else in a scratch file, where the browser has OPFS (else in memory after all). */
function readWeights(
  response: Response,
  onBytes: (done: number, total: number | null) => void,
): Promise<WeightsFile> {
  const total = Number(response.headers.get('Content-Length')) || null;
  const large = total === null || total > IN_MEMORY_LIMIT;
  // A compressed answer's Content-Length is not the file's: the bytes are not counted against it then.
  const exact = response.headers.get('Content-Encoding') ? null : total;
  if (large && response.body && scratchAvailable()) return streamToScratch(response.body, exact, onBytes);
  return readWithProgress(response, onBytes);
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
    weights: await readWeights(weights, onBytes),
  };
}
