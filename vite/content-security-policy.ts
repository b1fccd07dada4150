/**
 * The Content-Security-Policy of the built site: code only from the site itself, network only to the
 * site, the Hugging Face Hub with its file CDN, and this machine (a local mirror or test server).
 * `vite preview` sends it; a static host must send the same header (see the README).
 *
 * Two allowances are needed by tfjs's WebAssembly backend and nothing else: 'wasm-unsafe-eval' to
 * compile its .wasm, and 'unsafe-eval' because its thread helpers run the threaded module from text
 * (see tfjs-wasm-threads.ts), loaded into its blob: helper workers. No inline script is allowed.
 */
export const HUB_ORIGINS = ['https://huggingface.co', 'https://*.huggingface.co', 'https://*.hf.co'];
/**
 * Where publishing an adapter PUTs its weights: the Hub's LFS batch endpoint answers with a pre-signed URL
 * in Hugging Face's LFS bucket (src/hub/publish.ts turns Xet off, so nothing else is needed). Only that
 * bucket's path is allowed, not the storage service at large.
 */
export const HUB_UPLOAD_ORIGINS = [
  'https://s3.us-east-1.amazonaws.com/lfs.huggingface.co/',
  'https://hf-hub-lfs-us-east-1.s3-accelerate.amazonaws.com',
];
const LOOPBACK = ['http://127.0.0.1:*', 'http://localhost:*'];

export function contentSecurityPolicy(extraConnect: string[] = []): string {
  const connect = [...HUB_ORIGINS, ...HUB_UPLOAD_ORIGINS, ...LOOPBACK, ...extraConnect];
  return [
    "default-src 'self'",
    "script-src 'self' blob: 'wasm-unsafe-eval' 'unsafe-eval'",
    "worker-src 'self' blob:",
    `connect-src 'self' blob: data: ${connect.join(' ')}`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}
