/**
 * RMSNorm as one WGSL kernel each way, instead of the six to eleven tfjs ops of the plain version
 * (`rmsNorm` in ../layers.ts, whose math this follows): one workgroup per row reduces the row in shared
 * memory and writes it out.
 *   forward:  y = x · r · w                        with r = 1/sqrt(mean(x²) + eps)
 *   backward: dx = r·g − x·r³·mean(g·x)            with g = dy · w
 * Only x is kept for the backward pass; the weight is frozen and gets no gradient.
 */
import { tf } from '../tf';
import {
  registerWebGpuKernel,
  rowWorkgroupSize,
  runKernel,
  type ProgramUniform,
  type WebGPUProgram,
} from './program';

const FORWARD = 'WebtuneRmsNorm';
const BACKWARD = 'WebtuneRmsNormGrad';

/** One workgroup per row of `hidden` values; `variableNames` are the row-shaped inputs besides `w`. */
class RmsNormProgram implements WebGPUProgram {
  readonly variableNames: string[];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0, 1] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number];
  readonly uniforms = 'eps : f32, rows : i32, hidden : i32,';

  constructor(
    rows: number,
    hidden: number,
    private readonly backward: boolean,
  ) {
    this.variableNames = backward ? ['x', 'w', 'dy'] : ['x', 'w'];
    this.outputShape = [rows, hidden];
    this.workgroupSize = [rowWorkgroupSize(hidden), 1, 1];
    this.dispatch = [rows, 1, 1];
    this.shaderKey = backward ? 'webtuneRmsNormGrad' : 'webtuneRmsNorm';
  }

  getUserCode(): string {
    const size = this.workgroupSize[0];
    // Sums of the row (Σx², and for the gradient Σg·x), each thread over a stride of the row, then a
    // tree in shared memory. Every thread reaches every barrier: rows past the end add zeros.
    const sums = this.backward ? ['sumSquares', 'sumGx'] : ['sumSquares'];
    return `
      ${sums.map((s) => `var<workgroup> ${s} : array<f32, ${size}>;`).join('\n')}

      fn main(index : i32) {
        let row = index / ${size};
        let lane = i32(localId.x);
        let inside = row < uniforms.rows;
        let offset = row * uniforms.hidden;
        var squares = 0.0;
        var gx = 0.0;
        if (inside) {
          for (var k = lane; k < uniforms.hidden; k = k + ${size}) {
            let v = x[offset + k];
            squares = squares + v * v;
            ${this.backward ? 'gx = gx + dy[offset + k] * w[k] * v;' : ''}
          }
        }
        sumSquares[lane] = squares;
        ${this.backward ? 'sumGx[lane] = gx;' : ''}
        workgroupBarrier();
        for (var stride = ${size / 2}; stride > 0; stride = stride / 2) {
          if (lane < stride) {
            sumSquares[lane] = sumSquares[lane] + sumSquares[lane + stride];
            ${this.backward ? 'sumGx[lane] = sumGx[lane] + sumGx[lane + stride];' : ''}
          }
          workgroupBarrier();
        }
        if (inside) {
          let n = f32(uniforms.hidden);
          let r = inverseSqrt(sumSquares[0] / n + uniforms.eps);
          ${this.backward ? 'let xScale = r * r * r * (sumGx[0] / n);' : ''}
          for (var k = lane; k < uniforms.hidden; k = k + ${size}) {
            ${
              this.backward
                ? 'result[offset + k] = dy[offset + k] * w[k] * r - x[offset + k] * xScale;'
                : 'result[offset + k] = x[offset + k] * r * w[k];'
            }
          }
        }
      }
    `;
  }
}

function register(): void {
  const run =
    (backward: boolean) =>
    (
      backend: Parameters<Parameters<typeof registerWebGpuKernel>[1]>[0],
      inputs: tf.TensorInfo[],
      attrs: Record<string, unknown>,
    ) => {
      const [rows, hidden] = inputs[0].shape;
      const uniforms: ProgramUniform[] = [
        { type: 'float32', data: [attrs.eps as number] },
        { type: 'int32', data: [rows] },
        { type: 'int32', data: [hidden] },
      ];
      return backend.runWebGPUProgram(
        new RmsNormProgram(rows, hidden, backward),
        inputs,
        'float32',
        uniforms,
      );
    };
  registerWebGpuKernel(FORWARD, run(false), ['x', 'w']);
  registerWebGpuKernel(BACKWARD, run(true), ['x', 'w', 'dy']);
}

/** The rows of x as [rows, hidden] (a reshape: no data moves). */
const asRows = (t: tf.Tensor) => tf.reshape(t, [-1, t.shape[t.shape.length - 1]]) as tf.Tensor2D;

/**
 * RMSNorm over the last axis of x (any rank) on the webgpu backend, with its hand-written gradient:
 * the same values and gradient as `rmsNorm` in ../layers.ts, in one dispatch each way.
 */
export function rmsNormOnGpu<T extends tf.Tensor>(x: T, weight: tf.Tensor1D, eps: number): T {
  register();
  const op = tf.customGrad(((input: T, save: tf.GradSaveFunc) => {
    save([input]);
    return {
      value: tf.tidy(() =>
        tf.reshape(runKernel(FORWARD, { x: asRows(input), w: weight }, { eps }), input.shape),
      ),
      gradFunc: (dy: T, [saved]: tf.Tensor[]) =>
        tf.tidy(() =>
          tf.reshape(
            runKernel(BACKWARD, { x: asRows(saved), w: weight, dy: asRows(dy) }, { eps }),
            saved.shape,
          ),
        ),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x) as T;
}
