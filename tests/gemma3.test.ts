// Gemma 3 on cpu and wasm against the PyTorch reference (tests/helpers/gemma3-checks.ts).
import { gemma3Checks } from './helpers/gemma3-checks';

gemma3Checks('cpu');
gemma3Checks('wasm');
