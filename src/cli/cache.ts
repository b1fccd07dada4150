/** `webtune cache`: the models downloaded into $XDG_CACHE_HOME/webtune, their sizes, and deleting them. */
import { cachedModels } from '../hub/model';
import { parse, type Options } from './args';
import { CliError } from './errors';
import { readEnvironment } from '../node/environment';
import { FsStore } from './fs-store';
import type { Output } from './output';

export const CACHE_HELP = `webtune cache [--delete ID] [--json]

Lists the models downloaded by Hub id into ${'$'}XDG_CACHE_HOME/webtune (~/.cache/webtune) with their sizes.
  --delete ID     delete every cached revision of the model ID (owner/name)
--json prints {"dir", "models": [{"key", "bytes"}]} (after any deletion)`;

const OPTIONS: Options = { delete: { type: 'string' } };

export async function cacheCommand(argv: string[], out: Output): Promise<void> {
  const values = parse(argv, OPTIONS, 'cache');
  if (values.help) return out.help(CACHE_HELP);
  const dir = readEnvironment().cacheDir;
  const store = new FsStore(dir);
  const id = values.delete as string | undefined;
  if (id !== undefined) {
    // Keys are <host>/<owner>/<name>/<revision>: remove the model under every endpoint and revision.
    const matching = (await cachedModels(store)).filter((m) => m.key.split('/').slice(1, 3).join('/') === id);
    if (matching.length === 0)
      throw new CliError(`${id} is not in the cache (${dir}). Run webtune cache to see what is.`);
    for (const m of matching) await store.remove(m.key);
    out.progress(`deleted ${id} (${(matching.reduce((n, m) => n + m.bytes, 0) / 2 ** 20).toFixed(1)} MB)`);
  }
  const models = await cachedModels(store);
  out.result({ dir, models }, () =>
    models.length === 0
      ? `No models in ${dir}.`
      : models.map((m) => `${m.key}  ${(m.bytes / 2 ** 20).toFixed(1)} MB`).join('\n'),
  );
}
