/**
 * Dev and preview only: serves model folders in Hugging Face layout under /models/<name>/<file>, by
 * default the repository's test fixtures in fixtures/models (WEBTUNE_MODELS_DIR names another folder), so
 * `?model=/models/stories260K` works locally and in the end-to-end tests. Nothing of this goes into a build.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Connect, Plugin } from 'vite';
import { readEnvironment } from '../src/node/environment';

export function serveModels(
  dir = readEnvironment(process.env, path.resolve(__dirname, '..')).modelsDir,
): Plugin {
  const middleware: Connect.NextHandleFunction = (req, res, next) => {
    const url = decodeURIComponent((req.url ?? '').split('?')[0]);
    if (!url.startsWith('/models/')) return next();
    const file = path.resolve(dir, url.slice('/models/'.length));
    if (!file.startsWith(dir + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.statusCode = 404;
      res.end('Not found');
      return;
    }
    res.setHeader('Content-Type', file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
    res.setHeader('Content-Length', fs.statSync(file).size);
    // The page is cross-origin isolated (COEP require-corp); resources must opt in to being embedded.
    res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
    res.setHeader('Access-Control-Allow-Origin', '*');
    fs.createReadStream(file).pipe(res);
  };
  return {
    name: 'webtune-serve-models',
    configureServer: (server) => void server.middlewares.use(middleware),
    configurePreviewServer: (server) => void server.middlewares.use(middleware),
  };
}
