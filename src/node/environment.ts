/**
 * Everything webtune reads from the process environment, read in one place: the CLI, the bench, the dev
 * and preview servers and the tests take their settings from here. The page's counterpart, read from its
 * address, is src/ui/environment.ts. README's "Environment" table lists the same variables.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_ENDPOINT } from '../hub/resolve';

export interface NodeEnvironment {
  /** HF_ENDPOINT: the Hub or a mirror models are downloaded from (default https://huggingface.co). */
  hubEndpoint: string;
  /** $XDG_CACHE_HOME/webtune, default ~/.cache/webtune: the CLI's downloaded models. */
  cacheDir: string;
  /**
   * WEBTUNE_MODELS_DIR: the model folders the dev and preview servers serve at /models/ and the bench
   * loads by name, default the repository's test fixtures, fixtures/models.
   */
  modelsDir: string;
  /** WEBTUNE_CSP_CONNECT: more origins (space-separated) the built site may download models from. */
  cspConnect: string[];
  /** WEBTUNE_DEBUG=1: the CLI prints the stack trace of an unexpected error after its one-line message. */
  debug: boolean;
  /** WEBTUNE_BENCH_DEBUG=1: the browser bench echoes the page's console and every response. */
  benchDebug: boolean;
  /** WEBTUNE_BENCH_BUILD: a built bench page to use instead of building one. */
  benchBuild: string | null;
  /** WEBTUNE_E2E_SERVER=dev: the e2e suite runs against the dev server instead of the built site. */
  e2eDevServer: boolean;
  /** WEBTUNE_E2E_REBUILD=1: the e2e suite builds the site afresh even when its build is current. */
  e2eRebuild: boolean;
  /** HF_TOKEN: the person's Hugging Face access token (gated models, private adapters); null when unset. */
  hfToken: string | null;
  /**
   * Where `huggingface-cli login` (`hf auth login`) writes the token: HF_TOKEN_PATH, else $HF_HOME/token,
   * HF_HOME defaulting to $XDG_CACHE_HOME/huggingface (~/.cache/huggingface).
   */
  hfTokenFile: string;
}

const flag = (value: string | undefined) => value !== undefined && value !== '' && value !== '0';

/**
 * The checkout this code runs from (src/node/ under vitest or tsx, dist-cli/ when bundled): the nearest
 * folder above `from` with the project's vite.config.ts, or null outside a checkout.
 */
export function repositoryRoot(from = path.dirname(fileURLToPath(import.meta.url))): string | null {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'vite.config.ts'))) return dir;
    if (path.dirname(dir) === dir) return null;
  }
}

/** `root` is the checkout whose fixtures/models is the default models folder (default: this one's). */
export function readEnvironment(
  env: Record<string, string | undefined> = process.env,
  root = repositoryRoot() ?? process.cwd(),
): NodeEnvironment {
  return {
    hubEndpoint: env.HF_ENDPOINT || DEFAULT_ENDPOINT,
    cacheDir: path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'webtune'),
    modelsDir: env.WEBTUNE_MODELS_DIR || path.join(root, 'fixtures', 'models'),
    cspConnect: (env.WEBTUNE_CSP_CONNECT ?? '').split(/\s+/).filter(Boolean),
    debug: flag(env.WEBTUNE_DEBUG),
    benchDebug: flag(env.WEBTUNE_BENCH_DEBUG),
    benchBuild: env.WEBTUNE_BENCH_BUILD || null,
    e2eDevServer: env.WEBTUNE_E2E_SERVER === 'dev',
    e2eRebuild: flag(env.WEBTUNE_E2E_REBUILD),
    hfToken: env.HF_TOKEN?.trim() || null,
    hfTokenFile:
      env.HF_TOKEN_PATH ||
      path.join(
        env.HF_HOME || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'huggingface'),
        'token',
      ),
  };
}
