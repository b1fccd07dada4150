/**
 * The page's state modules (src/ui/state) over the real engine: `new Worker()` gives a worker whose messages
 * go, a task later and structured-cloned as a real worker's would, to an EngineHost (src/worker/host.ts) in
 * this process, with stories260K on wasm. The page and the host share one (fresh) IndexedDB, as a page and
 * its worker share their origin's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { vi } from 'vitest';
import type { WorkerLike } from '../../src/worker/client';
import { EngineHost } from '../../src/worker/host';
import type { WorkerRequest, WorkerResponse } from '../../src/worker/protocol';
import { modelDir, WASM_PATHS } from './shared';
import { freshPage, type Page } from './ui-state';

export type EnginePage = Page & { host(): EngineHost };

/** The model folder's files, as a person picks them (each named by its path in the folder). */
function pickedModel(name: string): File[] {
  return fs.readdirSync(modelDir(name)).map((file) => {
    const picked = new File([fs.readFileSync(path.join(modelDir(name), file))], file);
    return Object.defineProperty(picked, 'webkitRelativePath', { value: `${name}/${file}` });
  });
}

/** A fresh page whose engine is the real one, with `model` loaded from its picked files. */
export async function pageWithEngine(model = 'stories260K'): Promise<EnginePage> {
  // The page's modules are imported afresh; the host keeps this file's engine (tfjs and its backends are set
  // up once per process), and both reach the same fresh IndexedDB through the global that freshPage sets.
  const page = await freshPage();
  let host: EngineHost | null = null;
  vi.stubGlobal('Worker', function Worker() {
    const worker: WorkerLike = {
      onmessage: null,
      onerror: null,
      onmessageerror: null,
      postMessage(message: WorkerRequest) {
        const copy = structuredClone(message);
        setTimeout(() => void host!.handle(copy), 0);
      },
      terminate() {},
    };
    host = new EngineHost(
      (message: WorkerResponse) =>
        setTimeout(() => worker.onmessage?.call(worker as Worker, { data: message } as MessageEvent), 0),
      { wasmPaths: WASM_PATHS },
    );
    return worker;
  });
  await page.engine.start('wasm');
  await page.engine.loadFromFiles(pickedModel(model));
  if (!page.engine.model)
    throw new Error(`The model did not load: ${page.engine.error ?? 'no reason given'}`);
  return {
    ...page,
    host: () => {
      if (!host) throw new Error('The engine has not started.');
      return host;
    },
  };
}
