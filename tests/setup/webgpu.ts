// WebGPU in Node through Dawn (npm `webgpu`). navigator.gpu must exist before tfjs-backend-webgpu is
// imported, because that module registers itself only when WebGPU is present at import time.
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const g = globalThis as unknown as { navigator?: Record<string, unknown> };
g.navigator ??= {};
Object.defineProperty(g.navigator, 'gpu', { value: create([]), configurable: true });
