/**
 * The one place tfjs is imported and its registries filled. tfjs-core ships its gradient table
 * separately; without it `variableGrads` cannot differentiate anything.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';

// PROD silences tfjs's console advice (e.g. "install tfjs-node"), which would pollute the CLI's output.
tf.env().set('PROD', true);

export { tf };

/**
 * True while tfjs records operations for a gradient (inside variableGrads / grads, outside a kernel).
 * Memory-saving paths use it to do backward-pass work only when a backward pass will follow.
 */
export function recordingGradients(): boolean {
  return (tf.engine() as unknown as { isTapeOn(): boolean }).isTapeOn();
}
