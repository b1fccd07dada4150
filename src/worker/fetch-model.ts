/** Fetches a model folder in Hugging Face layout from a URL (e.g. `?model=/models/stories260K`). */
import { REQUIRED_FILES, type ModelFiles } from '../engine/model-files';

export async function fetchModelFiles(folderUrl: string): Promise<ModelFiles> {
  const base = folderUrl.endsWith('/') ? folderUrl : `${folderUrl}/`;
  const get = async (file: string) => {
    let response: Response;
    try {
      response = await fetch(new URL(file, new URL(base, location.href)));
    } catch (error) {
      throw new Error(`Could not download ${file} from ${base} (${(error as Error).message}). Check the address and your connection.`);
    }
    if (!response.ok) throw new Error(`${base}${file} answered ${response.status} ${response.statusText}. A model folder needs ${REQUIRED_FILES.join(', ')}.`);
    return response;
  };
  const [config, tokenizerJson, tokenizerConfig, weights] = await Promise.all(REQUIRED_FILES.map(get));
  return {
    name: base.split('/').filter(Boolean).pop() ?? 'model',
    config: await config.text(),
    tokenizerJson: await tokenizerJson.text(),
    tokenizerConfig: await tokenizerConfig.text(),
    weights: new Uint8Array(await weights.arrayBuffer()),
  };
}
