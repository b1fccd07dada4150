/**
 * A score of the base model (adapter off) and, when there is an adapter, of the fine-tuned one (adapter on),
 * leaving the adapter as it was found: how every held-out comparison (documents' perplexity, preference
 * accuracy) is taken.
 */
export async function baseAndTuned<S>(
  adapter: { enabled: boolean } | null,
  score: () => Promise<S>,
  onStage?: (stage: 'base' | 'tuned') => void,
): Promise<{ base: S; tuned: S | null }> {
  const wasEnabled = adapter?.enabled;
  try {
    if (adapter) adapter.enabled = false;
    onStage?.('base');
    const base = await score();
    if (!adapter) return { base, tuned: null };
    adapter.enabled = true;
    onStage?.('tuned');
    return { base, tuned: await score() };
  } finally {
    if (adapter) adapter.enabled = wasEnabled!;
  }
}
