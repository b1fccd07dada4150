// Test page: drives the real engine worker through the real client, as the app will.
import { EngineClient } from '../../src/worker/client';
import { fetchModelFiles } from '../../src/worker/fetch-model';

async function runEngine(
  backend: 'wasm' | 'webgpu' | 'auto',
  text: string,
  prompt: string,
  maxNewTokens: number,
) {
  const client = EngineClient.start();
  try {
    const choice = await client.request('init', { backend });
    const files = await fetchModelFiles('/models/stories260K');
    const model = await client.request('loadModel', { files });
    const score = await client.request('score', { text });
    const streamed: string[] = [];
    const generated = await client.request('generate', { prompt, maxNewTokens }, (t) => streamed.push(t));
    return { choice, model, score, generated, streamed, crossOriginIsolated: self.crossOriginIsolated };
  } finally {
    client.terminate();
  }
}

export type RunEngine = typeof runEngine;
(window as unknown as { runEngine: RunEngine }).runEngine = runEngine;
document.body.dataset.ready = 'true';
