/**
 * Kept for the callers of the version 1 store API (see saved.ts); the database itself is db.ts,
 * its errors errors.ts. Delete this file with saved.ts once nothing imports them.
 */
export { closeStore, newId, openStore } from './db';
export { StorageError } from './errors';
export type { SavedAdapter, SavedDataset, SavedRun } from './legacy';
