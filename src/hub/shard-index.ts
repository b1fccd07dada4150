/**
 * The shard list of a sharded checkpoint (model.safetensors.index.json), with every name checked before
 * anything is read or fetched: the index comes from the model, so it is untrusted. Used for the Hub
 * and for a local folder (CLI), so `../../etc/passwd` is refused the same way on both. DOM-free.
 */
export const SHARD_INDEX = 'model.safetensors.index.json';

/**
 * Why `name` cannot be a shard of the model (a path out of its folder, not a safetensors file), or null when
 * it can.
 */
export function badShardName(name: unknown): string | null {
  if (typeof name !== 'string' || name === '') return 'it is not a file name';
  if (!name.endsWith('.safetensors')) return 'it is not a .safetensors file';
  // Windows separators and drive letters too: the CLI runs there, and a browser path never needs them.
  if (name.includes('\\') || name.includes('\0') || /^[A-Za-z]:/.test(name))
    return 'it is not a plain relative path';
  if (name.startsWith('/')) return 'it is an absolute path';
  if (name.split('/').some((part) => part === '..' || part === '.' || part === ''))
    return 'it leads out of the model folder';
  return null;
}

/** The distinct shard files in index order; throws an Error naming the first bad entry. */
export function shardNamesFromIndex(indexJson: string): string[] {
  let index: unknown;
  try {
    index = JSON.parse(indexJson);
  } catch (error) {
    throw new Error(`${SHARD_INDEX} is not valid JSON (${(error as Error).message}).`, { cause: error });
  }
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map))
    throw new Error(`${SHARD_INDEX} has no weight_map, so webtune cannot tell which files hold the weights.`);
  const files = [...new Set(Object.values(map as Record<string, unknown>))];
  for (const file of files) {
    const why = badShardName(file);
    if (why)
      throw new Error(
        `${SHARD_INDEX} lists ${JSON.stringify(file)} as a weights file, but ${why}. The index is damaged or hostile; webtune reads only .safetensors files inside the model folder.`,
      );
  }
  if (files.length === 0) throw new Error(`${SHARD_INDEX} lists no weights files.`);
  return files as string[];
}
