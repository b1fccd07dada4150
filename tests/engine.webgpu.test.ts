// Same checks on WebGPU: Dawn over SwiftShader in Node (see vitest.webgpu.config.ts).
import { engineChecks } from './helpers/engine-checks';

engineChecks('webgpu', 24);
