/**
 * AdamW (Loshchilov & Hutter) with decoupled weight decay, as torch.optim.AdamW does it:
 *   p ← p·(1 − lr·λ);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
 *   p ← p − lr · m̂ / (√v̂ + ε)   with bias-corrected m̂, v̂.
 * Its moments can be copied out and back in, so a run can resume exactly.
 */
import { tf } from './tf';

export interface AdamWSettings {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

export const DEFAULT_ADAMW: AdamWSettings = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01 };

export interface AdamWState {
  step: number;
  /** First and second moments per parameter, in parameter order. */
  m: Float32Array[];
  v: Float32Array[];
}

export class AdamW {
  private step = 0;
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];

  constructor(
    private readonly params: tf.Variable[],
    readonly settings: AdamWSettings = DEFAULT_ADAMW,
  ) {
    const zeros = (p: tf.Variable) => tf.tidy(() => tf.variable(tf.zerosLike(p), false));
    this.m = params.map(zeros);
    this.v = params.map(zeros);
  }

  /** Applies one update with gradients in parameter order, already clipped. */
  apply(grads: tf.Tensor[], learningRate: number): void {
    this.step++;
    const { beta1, beta2, epsilon, weightDecay } = this.settings;
    const correction1 = 1 - beta1 ** this.step;
    const correction2 = 1 - beta2 ** this.step;
    tf.tidy(() => {
      this.params.forEach((p, i) => {
        const g = grads[i];
        const m = tf.add(tf.mul(this.m[i], beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.v[i], beta2), tf.mul(tf.square(g), 1 - beta2));
        const update = tf.div(tf.div(m, correction1), tf.add(tf.sqrt(tf.div(v, correction2)), epsilon));
        const decayed = tf.mul(p, 1 - learningRate * weightDecay);
        p.assign(tf.sub(decayed, tf.mul(update, learningRate)));
        this.m[i].assign(m);
        this.v[i].assign(v);
      });
    });
  }

  /** Async because WebGPU cannot read tensors synchronously. */
  async exportState(): Promise<AdamWState> {
    const read = (ts: tf.Variable[]) => Promise.all(ts.map(async (t) => (await t.data()) as Float32Array));
    return { step: this.step, m: await read(this.m), v: await read(this.v) };
  }

  importState(state: AdamWState): void {
    if (state.m.length !== this.m.length)
      throw new Error('The saved optimizer state does not match this adapter (different modules).');
    this.step = state.step;
    tf.tidy(() => {
      this.m.forEach((t, i) => t.assign(tf.tensor(state.m[i], t.shape)));
      this.v.forEach((t, i) => t.assign(tf.tensor(state.v[i], t.shape)));
    });
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}
