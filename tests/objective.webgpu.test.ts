// The objectives through the fused WebGPU loss kernels (Dawn over SwiftShader in Node): per-row losses
// from the kernel, per-sequence sums, and the per-sequence scaling of the saved gradient.
import { objectiveChecks } from './helpers/objective-checks';

objectiveChecks('webgpu', [
  { label: 'recomputed layers, logits in 5-row chunks', recompute: true, chunkRows: 5 },
]);
