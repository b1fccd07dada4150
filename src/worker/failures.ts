/**
 * Runtime failures during training in words a person can act on. The checkpoint saved before the failure
 * stays in IndexedDB, so Resume training after a reload continues from it.
 */
export async function explainFailures<T>(step: () => number, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const message = (error as Error).message ?? String(error);
    const after =
      'The last checkpoint (saved every few steps) is kept: reload the page and choose Resume training, or start again with new settings.';
    if (
      /out of memory|OOM|allocat|Array buffer allocation failed|RangeError: Invalid typed array length/i.test(
        message,
      )
    ) {
      throw new Error(
        `The device ran out of memory during training (near step ${step() + 1}). Try a smaller batch size or max length, or a smaller model. ${after}`,
        { cause: error },
      );
    }
    if (/device (was )?lost|GPUDevice|device is lost/i.test(message)) {
      throw new Error(
        `The GPU stopped responding (device lost) during training. Choose the WebAssembly backend under Advanced, or close other GPU-heavy tabs. ${after}`,
        { cause: error },
      );
    }
    throw error;
  }
}
