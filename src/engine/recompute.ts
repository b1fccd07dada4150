/**
 * Recomputed layers (Chen et al. 2016, "Training deep nets with sublinear memory cost", where it is called
 * gradient checkpointing; webtune keeps "checkpoint" for a saved training state): a decoder layer keeps
 * only its input for the backward pass and runs again inside its own gradient. Training
 * then holds one layer's activations at a time instead of every layer's, for one extra forward pass.
 */
import type { LayerContext } from './layers';
import { tf } from './tf';

type Layer = (input: tf.Tensor2D, c: LayerContext) => tf.Tensor2D;

/**
 * `layer(x, c)` whose gradient recomputes the layer: d/dx and d/d(trainable) come out of a second,
 * recorded forward pass from the saved input. Dropout draws the same seeds both times, so the
 * recomputed pass is the pass that produced the output.
 */
export function recomputed(
  layer: Layer,
  x: tf.Tensor2D,
  c: LayerContext,
  trainable: tf.Variable[],
): tf.Tensor2D {
  const seeds: number[] = [];
  const draw = c.dropoutSeed;
  const recording: LayerContext = draw ? { ...c, dropoutSeed: () => seeds[seeds.push(draw()) - 1] } : c;
  const op = tf.customGrad(((...args: unknown[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const input = args[0] as tf.Tensor2D;
    save([input]);
    return {
      value: layer(input, recording),
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
        const [savedInput] = saved as [tf.Tensor2D];
        let next = 0;
        // The RoPE tables and the mask were made in the caller's scope, gone by now: rebuilt from host
        // arrays, which is cheaper than keeping a copy per layer until the backward pass. Only the output's
        // gradient is wanted from this pass, so products whose value nothing else reads are skipped.
        const replay: LayerContext = {
          ...c,
          ...c.remakeTables(),
          dropoutSeed: draw ? () => seeds[next++] : undefined,
          gradientOnly: true,
        };
        // The trainable tensors are passed as inputs so the gradient is taken for them; the layer reads
        // the same tensors through its projections.
        return withOwnTape(() =>
          tf.grads((input: tf.Tensor) => layer(input as tf.Tensor2D, replay))([savedInput, ...trainable], dy),
        );
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x, ...trainable) as tf.Tensor2D;
}

/**
 * Runs a gradient computation inside another one's backward pass. tfjs keeps a single active tape and
 * a gradient call started at depth 0 replaces it (and clears it when done), so the outer call would
 * lose the tape whose saved tensors it frees at the end; keep it aside and put it back.
 */
function withOwnTape<T>(run: () => T): T {
  const state = (tf.engine() as unknown as { state: { activeTape: unknown } }).state;
  const outer = state.activeTape;
  try {
    return run();
  } finally {
    state.activeTape = outer;
  }
}
