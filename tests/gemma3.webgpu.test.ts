// Gemma 3 on WebGPU (Dawn + SwiftShader) against the PyTorch reference (tests/helpers/gemma3-checks.ts).
import { gemma3Checks } from './helpers/gemma3-checks';

gemma3Checks('webgpu', { greedyTokens: 16, lean: true });
