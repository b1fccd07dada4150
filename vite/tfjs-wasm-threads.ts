/**
 * Keeps tfjs-backend-wasm's threads working in a minified build.
 *
 * tfjs starts its pthread helper workers from text: it sends them
 * `"var WasmBackendModuleThreadedSimd = " + wasmFactoryThreadedSimd.toString()` as a Blob, and each helper
 * evaluates that text on its own. The factory is an inner function of an IIFE and reads the IIFE's
 * `_scriptDir` behind a guard, `typeof _scriptDir !== "undefined" && _scriptDir`, which is what makes it safe
 * to run alone. A minifier sees a local binding and so renames `_scriptDir` (to `e`) and drops the guard
 * (`e !== void 0 && e`): the helper, where no `e` exists, throws "ReferenceError: e is not defined", never
 * reports for duty, and the backend start waits forever.
 *
 * The fix: the module's code reaches the bundle as a string and is evaluated once with `new Function`. A
 * minifier leaves strings alone, so the factory's text is byte for byte what tfjs ships (and what the dev
 * server serves), self-contained as its authors meant; the main thread runs exactly that code too.
 */
import fs from 'node:fs';
import type { Plugin } from 'vite';

const THREADED_FACTORY =
  /[\\/]@tensorflow[\\/]tfjs-backend-wasm[\\/]wasm-out[\\/]tfjs-backend-wasm-threaded-simd\.js$/;

export function tfjsWasmThreads(): Plugin {
  return {
    name: 'webtune-tfjs-wasm-threads',
    apply: 'build',
    enforce: 'pre',
    load(id) {
      const file = id.split('?')[0];
      if (!THREADED_FACTORY.test(file)) return null;
      const source = fs.readFileSync(file, 'utf8');
      if (!source.includes('var WasmBackendModuleThreadedSimd')) {
        this.error(
          `${file} no longer defines WasmBackendModuleThreadedSimd; check vite/tfjs-wasm-threads.ts against this tfjs version`,
        );
      }
      // Inside the Function, `exports`, `module` and `define` are undeclared, so the file's UMD tail does
      // nothing.
      const body = `${source}\nreturn WasmBackendModuleThreadedSimd;`;
      return `const WasmBackendModuleThreadedSimd = new Function(${JSON.stringify(body)})();\nexport default WasmBackendModuleThreadedSimd;\n`;
    },
  };
}
