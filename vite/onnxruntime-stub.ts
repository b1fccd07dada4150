/**
 * Stands in for onnxruntime-web in the built site. webtune uses @huggingface/transformers for its
 * tokenizers and chat templates only; its ONNX runtime (a 26 MB wasm, fetched from a CDN unless told
 * otherwise) would never run. transformers.js reads `env` at import time and keeps `InferenceSession`
 * for models, so this gives it an empty environment and a session that explains itself if ever asked.
 */
export { Tensor } from 'onnxruntime-common';

export const env = {};

export const InferenceSession = {
  create(): never {
    throw new Error('webtune runs models with its own engine; the ONNX runtime is not part of this site.');
  },
};
