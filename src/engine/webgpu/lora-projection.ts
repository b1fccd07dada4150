/**
 * A LoRA-wrapped linear as one WGSL kernel: y = x·W + scale·((x'·Aᵀ)·Bᵀ), with W [in, out] as `Linear`
 * stores it when the weight is on the right, A [r, in] and B [out, r] (PEFT's layout), and x' the input
 * of the LoRA branch (x, or x after dropout). Plain tfjs runs this as three products, a scale and an add,
 * five dispatches; here each workgroup computes a 16×16 tile of y: first the tile's rows of x'·Aᵀ into
 * shared memory, then x·W in 16-wide slices of the inner dimension, then adds the rank-r product.
 * The gradient stays plain tfjs ops (LoRA's matrices are small; the frozen product's gradient is one
 * matMul either way).
 */
import { tf } from '../tf';
import {
  fusedKernelsApply,
  registerWebGpuKernel,
  runKernel,
  type ProgramUniform,
  type WebGPUProgram,
} from './program';

const KERNEL = 'WebtuneLoraProjection';
const TILE = 16;

class LoraProjectionProgram implements WebGPUProgram {
  readonly variableNames = ['x', 'w', 'loraX', 'a', 'b'];
  readonly outputShape: number[];
  readonly shaderKey: string;
  // Output columns along the dispatch's x, rows along its y: the entry point calls main() without an index.
  readonly dispatchLayout = { x: [1], y: [0] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [TILE, TILE, 1];
  readonly uniforms = 'scale : f32, rows : i32, inner : i32, cols : i32,';

  constructor(
    rows: number,
    cols: number,
    private readonly rank: number,
  ) {
    this.outputShape = [rows, cols];
    this.dispatch = [Math.ceil(cols / TILE), Math.ceil(rows / TILE), 1];
    this.shaderKey = `webtuneLoraProjection_${rank}`;
  }

  getUserCode(): string {
    const rank = this.rank;
    return `
      var<workgroup> loraRows : array<f32, ${TILE * rank}>;
      var<workgroup> xTile : array<f32, ${TILE * TILE}>;
      var<workgroup> wTile : array<f32, ${TILE * TILE}>;

      fn main() {
        let lx = i32(localId.x);
        let ly = i32(localId.y);
        let lane = ly * ${TILE} + lx;
        let rowBase = i32(workgroupId.y) * ${TILE};
        let row = rowBase + ly;
        let col = i32(workgroupId.x) * ${TILE} + lx;
        let inner = uniforms.inner;

        // x'·Aᵀ for the tile's rows: ${TILE}·r dot products of length in, shared by the tile's columns.
        for (var p = lane; p < ${TILE * rank}; p = p + ${TILE * TILE}) {
          let tileRow = p / ${rank};
          let source = rowBase + tileRow;
          let r = p - tileRow * ${rank};
          var dot = 0.0;
          if (source < uniforms.rows) {
            for (var k = 0; k < inner; k = k + 1) {
              dot = dot + loraX[source * inner + k] * a[r * inner + k];
            }
          }
          loraRows[p] = dot;
        }

        // x·W, a ${TILE}-wide slice of the inner dimension at a time.
        var sum = 0.0;
        for (var k0 = 0; k0 < inner; k0 = k0 + ${TILE}) {
          var xValue = 0.0;
          if (row < uniforms.rows && k0 + lx < inner) {
            xValue = x[row * inner + k0 + lx];
          }
          var wValue = 0.0;
          if (k0 + ly < inner && col < uniforms.cols) {
            wValue = w[(k0 + ly) * uniforms.cols + col];
          }
          xTile[lane] = xValue;
          wTile[lane] = wValue;
          workgroupBarrier();
          for (var k = 0; k < ${TILE}; k = k + 1) {
            sum = sum + xTile[ly * ${TILE} + k] * wTile[k * ${TILE} + lx];
          }
          workgroupBarrier();
        }
        workgroupBarrier();

        if (row < uniforms.rows && col < uniforms.cols) {
          var lora = 0.0;
          for (var r = 0; r < ${rank}; r = r + 1) {
            lora = lora + loraRows[ly * ${rank} + r] * b[col * ${rank} + r];
          }
          result[row * uniforms.cols + col] = sum + uniforms.scale * lora;
        }
      }
    `;
  }
}

function register(): void {
  registerWebGpuKernel(
    KERNEL,
    (backend, inputs, attrs) => {
      const [x, w, , a] = inputs;
      const [rows, inner] = x.shape;
      const cols = w.shape[1];
      const uniforms: ProgramUniform[] = [
        { type: 'float32', data: [attrs.scale as number] },
        { type: 'int32', data: [rows] },
        { type: 'int32', data: [inner] },
        { type: 'int32', data: [cols] },
      ];
      return backend.runWebGPUProgram(
        new LoraProjectionProgram(rows, cols, a.shape[0]),
        inputs,
        'float32',
        uniforms,
      );
    },
    ['x', 'w', 'loraX', 'a', 'b'],
  );
}

/** The same product in plain tfjs ops, differentiated by tfjs. */
function plainLoraProjection(
  x: tf.Tensor2D,
  weight: tf.Tensor2D,
  A: tf.Tensor2D,
  B: tf.Tensor2D,
  scale: number,
  loraInput: tf.Tensor2D,
): tf.Tensor2D {
  return tf.tidy(() =>
    tf.add(
      tf.matMul(x, weight),
      tf.mul(tf.matMul(tf.matMul(loraInput, A, false, true), B, false, true), scale),
    ),
  );
}

/**
 * x·W + scale·((x'·Aᵀ)·Bᵀ) for x [N, in], a frozen W [in, out], A [r, in], B [out, r]; x' is `loraInput`
 * (default x), e.g. x after LoRA dropout. Gradients flow to x, x', A and B (not W). One dispatch forward
 * on webgpu; plain ops elsewhere or with fused kernels switched off.
 */
export function loraProjection(
  x: tf.Tensor2D,
  weight: tf.Tensor2D,
  A: tf.Tensor2D,
  B: tf.Tensor2D,
  scale: number,
  loraInput: tf.Tensor2D = x,
): tf.Tensor2D {
  if (!fusedKernelsApply()) return plainLoraProjection(x, weight, A, B, scale, loraInput);
  register();
  const separate = loraInput !== x;
  const forward = (input: tf.Tensor2D, branchInput: tf.Tensor2D, a: tf.Tensor2D, b: tf.Tensor2D) =>
    runKernel<tf.Tensor2D>(KERNEL, { x: input, w: weight, loraX: branchInput, a, b }, { scale });
  // d(x) = dy·Wᵀ (+ d(x') when x' is x); d(x') = scale·(dy·B)·A; dA = scale·(dy·B)ᵀ·x'; dB =
  // scale·dyᵀ·(x'·Aᵀ).
  const gradients = (dy: tf.Tensor2D, branchInput: tf.Tensor2D, a: tf.Tensor2D, b: tf.Tensor2D) =>
    tf.tidy(() => {
      const dyB = tf.matMul(dy, b);
      const dBranch = tf.mul(tf.matMul(dyB, a), scale) as tf.Tensor2D;
      const dMain = tf.matMul(dy, weight, false, true);
      const dA = tf.mul(tf.matMul(dyB, branchInput, true, false), scale) as tf.Tensor2D;
      const dB = tf.mul(
        tf.matMul(dy, tf.matMul(branchInput, a, false, true), true, false),
        scale,
      ) as tf.Tensor2D;
      return { dMain, dBranch, dA, dB };
    });
  if (separate) {
    const op = tf.customGrad(((
      input: tf.Tensor2D,
      branchInput: tf.Tensor2D,
      a: tf.Tensor2D,
      b: tf.Tensor2D,
      save: tf.GradSaveFunc,
    ) => {
      save([branchInput]);
      return {
        value: forward(input, branchInput, a, b),
        gradFunc: (dy: tf.Tensor2D, [savedBranch]: tf.Tensor[]) => {
          const { dMain, dBranch, dA, dB } = gradients(dy, savedBranch as tf.Tensor2D, a, b);
          return [dMain, dBranch, dA, dB];
        },
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]);
    return op(x, loraInput, A, B) as tf.Tensor2D;
  }
  const op = tf.customGrad(((input: tf.Tensor2D, a: tf.Tensor2D, b: tf.Tensor2D, save: tf.GradSaveFunc) => {
    save([input]);
    return {
      value: forward(input, input, a, b),
      gradFunc: (dy: tf.Tensor2D, [saved]: tf.Tensor[]) => {
        const { dMain, dBranch, dA, dB } = gradients(dy, saved as tf.Tensor2D, a, b);
        const dx = tf.add(dMain, dBranch);
        tf.dispose([dMain, dBranch]);
        return [dx, dA, dB];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x, A, B) as tf.Tensor2D;
}
