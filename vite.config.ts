import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { serveModels } from './vite/serve-models';
import { contentSecurityPolicy } from './vite/content-security-policy';
import { tfjsWasmThreads } from './vite/tfjs-wasm-threads';
import { readEnvironment } from './src/node/environment';

// wasm threads need SharedArrayBuffer, which needs cross-origin isolation.
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  plugins: [svelte(), serveModels(), tfjsWasmThreads()],
  // transformers.js serves tokenizers and chat templates here; its ONNX runtime never runs (see the stub).
  resolve: {
    alias: {
      'onnxruntime-web/webgpu': fileURLToPath(new URL('./vite/onnxruntime-stub.ts', import.meta.url)),
    },
  },
  server: { headers: isolation, host: '127.0.0.1' },
  // The built site as it ships: with its Content-Security-Policy (a mirror may be added with
  // WEBTUNE_CSP_CONNECT="https://mirror.example"). The dev server's hot reload needs more, so it has none.
  preview: {
    headers: {
      ...isolation,
      'Content-Security-Policy': contentSecurityPolicy(readEnvironment().cspConnect),
    },
    host: '127.0.0.1',
  },
  // The engine worker is bundled on its own, with its own plugins: it is where tfjs-backend-wasm runs.
  worker: { format: 'es', plugins: () => [tfjsWasmThreads()] },
  // The engine worker's dependencies, pre-bundled up front: discovered later, they would make Vite
  // reload the page mid-session.
  optimizeDeps: {
    entries: ['index.html', 'tests/e2e/*.html'],
    include: [
      '@tensorflow/tfjs-core',
      '@tensorflow/tfjs-core/dist/register_all_gradients',
      '@tensorflow/tfjs-backend-cpu',
      '@tensorflow/tfjs-backend-wasm',
      '@tensorflow/tfjs-backend-webgpu',
      '@huggingface/transformers',
      'fflate',
    ],
  },
  build: { target: 'es2022' },
});
