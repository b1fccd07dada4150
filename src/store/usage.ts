/**
 * How much device storage webtune uses, for the page header, and asking the browser to keep it.
 * Both answer quietly where the Storage API is missing (Node, older browsers, some embedded views).
 */

const storageManager = (): StorageManager | undefined =>
  (globalThis as { navigator?: Navigator }).navigator?.storage;

/** Bytes this site uses and may use, as the browser estimates them; null when it cannot say. */
export async function storageUsage(): Promise<{ usedBytes: number; quotaBytes: number } | null> {
  const storage = storageManager();
  if (typeof storage?.estimate !== 'function') return null;
  try {
    const { usage, quota } = await storage.estimate();
    return { usedBytes: usage ?? 0, quotaBytes: quota ?? 0 };
  } catch {
    return null;
  }
}

/**
 * Asks the browser not to evict webtune's data when the device runs low on space (saved adapters and
 * checkpoints would otherwise be "best effort"). True when the data is, or now will be, kept.
 */
export async function requestPersistence(): Promise<boolean> {
  const storage = storageManager();
  try {
    if (typeof storage?.persisted === 'function' && (await storage.persisted())) return true;
    if (typeof storage?.persist !== 'function') return false;
    return await storage.persist();
  } catch {
    return false;
  }
}
