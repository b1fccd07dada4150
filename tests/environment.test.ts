/**
 * The environment is read in one place each: src/node/environment.ts for the process (CLI, bench, dev
 * server, tests) and src/ui/environment.ts for the page's address. Their readings, and that no other
 * source reads process.env or the page's query string itself.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readEnvironment } from '../src/node/environment';
import { readPageEnvironment } from '../src/ui/environment';

const SRC = path.resolve(__dirname, '..', 'src');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    return entry.isDirectory() ? sources(file) : /\.(ts|svelte)$/.test(entry.name) ? [file] : [];
  });
}

describe('the process environment', () => {
  it('has defaults for a bare environment', () => {
    const env = readEnvironment({}, '/srv/checkout');
    expect(env).toEqual({
      hubEndpoint: 'https://huggingface.co',
      cacheDir: path.join(os.homedir(), '.cache', 'webtune'),
      modelsDir: '/srv/checkout/fixtures/models',
      cspConnect: [],
      debug: false,
      benchDebug: false,
      benchBuild: null,
      e2eDevServer: false,
      e2eRebuild: false,
      hfToken: null,
      hfTokenFile: path.join(os.homedir(), '.cache', 'huggingface', 'token'),
    });
  });

  it('reads every variable the README lists', () => {
    const env = readEnvironment(
      {
        HF_ENDPOINT: 'https://mirror.example',
        XDG_CACHE_HOME: '/tmp/xdg',
        WEBTUNE_MODELS_DIR: '/data/models',
        WEBTUNE_CSP_CONNECT: ' https://a.example  https://b.example ',
        WEBTUNE_DEBUG: '1',
        WEBTUNE_BENCH_DEBUG: 'yes',
        WEBTUNE_BENCH_BUILD: '/tmp/bench-build',
        WEBTUNE_E2E_SERVER: 'dev',
        WEBTUNE_E2E_REBUILD: '1',
        HF_TOKEN: ' hf_fromTheEnvironment ',
        HF_HOME: '/srv/hf',
      },
      '/srv/checkout',
    );
    expect(env).toEqual({
      hubEndpoint: 'https://mirror.example',
      cacheDir: '/tmp/xdg/webtune',
      modelsDir: '/data/models',
      cspConnect: ['https://a.example', 'https://b.example'],
      debug: true,
      benchDebug: true,
      benchBuild: '/tmp/bench-build',
      e2eDevServer: true,
      e2eRebuild: true,
      hfToken: 'hf_fromTheEnvironment',
      hfTokenFile: '/srv/hf/token',
    });
    expect(readEnvironment({ WEBTUNE_MODELS_DIR: '/srv/models' }).modelsDir).toBe('/srv/models');
    // huggingface_hub's token file: HF_TOKEN_PATH wins over HF_HOME, which wins over XDG_CACHE_HOME.
    expect(readEnvironment({ HF_TOKEN_PATH: '/a/t', HF_HOME: '/b' }).hfTokenFile).toBe('/a/t');
    expect(readEnvironment({ XDG_CACHE_HOME: '/c' }).hfTokenFile).toBe('/c/huggingface/token');
    // Without a root: this checkout's fixtures (found from the module, not the working directory).
    expect(readEnvironment({}).modelsDir).toBe(path.resolve(__dirname, '..', 'fixtures', 'models'));
    // "0" and "" turn a flag off, as people write them.
    expect(readEnvironment({ WEBTUNE_DEBUG: '0' }).debug).toBe(false);
    expect(readEnvironment({ WEBTUNE_DEBUG: '' }).debug).toBe(false);
  });

  it('the README documents each variable', () => {
    const readme = fs.readFileSync(path.resolve(__dirname, '..', 'README.md'), 'utf8');
    const module = fs.readFileSync(path.join(SRC, 'node', 'environment.ts'), 'utf8');
    const names = [...new Set([...module.matchAll(/env\.([A-Z][A-Z0-9_]+)/g)].map((m) => m[1]))];
    expect(names.length).toBeGreaterThanOrEqual(9);
    for (const name of names) expect(readme, name).toContain(`\`${name}\``);
  });

  it('is read nowhere else in src (backends.ts only sets the Vulkan driver for Dawn)', () => {
    const readers = sources(SRC)
      .filter((file) => /process\.env\.[A-Z]/.test(fs.readFileSync(file, 'utf8')))
      .map((file) => path.relative(SRC, file));
    expect(readers).toEqual([path.join('node', 'backends.ts')]);
    const backends = fs.readFileSync(path.join(SRC, 'node', 'backends.ts'), 'utf8');
    const reads = [...backends.matchAll(/process\.env\.(\w+)\b(?!\s*(?:\?\?)?=)/g)].map((m) => m[1]);
    // Only checked before it is set, never used as a setting.
    expect(new Set(reads)).toEqual(new Set(['VK_ICD_FILENAMES']));
  });
});

describe("the page's address", () => {
  it('reads ?model= and ?hf_endpoint=', () => {
    expect(readPageEnvironment('')).toEqual({
      modelLink: null,
      hubEndpoint: 'https://huggingface.co',
      endpointProblem: null,
    });
    expect(
      readPageEnvironment('?model=hf:HuggingFaceTB/SmolLM2-135M&hf_endpoint=https://hf-mirror.example/'),
    ).toEqual({
      modelLink: 'hf:HuggingFaceTB/SmolLM2-135M',
      hubEndpoint: 'https://hf-mirror.example',
      endpointProblem: null,
    });
  });

  it('refuses an endpoint that is not a bare origin, saying so, and falls back to the Hub', () => {
    const env = readPageEnvironment('?model=/models/x&hf_endpoint=https://evil.example/attacker/repo');
    expect(env.hubEndpoint).toBe('https://huggingface.co');
    expect(env.endpointProblem).toMatch(
      /^This link's hf_endpoint was refused, so nothing it names is loaded\./,
    );
    expect(env.modelLink).toBe('/models/x');
  });

  it('is read nowhere else in the page', () => {
    const readers = sources(SRC)
      .filter((file) => /location\??\.search|URLSearchParams\(/.test(fs.readFileSync(file, 'utf8')))
      .map((file) => path.relative(SRC, file));
    expect(readers).toEqual([path.join('ui', 'environment.ts')]);
  });
});
