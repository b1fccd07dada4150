/**
 * What can go wrong with webtune's local storage, in words a person can act on. Every failure from
 * IndexedDB leaves this module as a StorageError whose message says what happened and what to do next.
 */

export type StorageProblem = 'quota' | 'unavailable' | 'version' | 'blocked' | 'failed';

export class StorageError extends Error {
  override name = 'StorageError';

  constructor(
    readonly problem: StorageProblem,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const messages = {
  quota: (action: string) =>
    `Your browser's storage for this site is full: webtune could not ${action}. Delete old adapters or datasets, then try again. Nothing already saved was lost.`,
  unavailable: () =>
    "This browser won't let webtune keep anything on this device (IndexedDB is unavailable, as in many private windows). Open webtune in a normal window to keep datasets, checkpoints and adapters after the page closes.",
  version: () =>
    'The webtune data on this device was written by a newer version of webtune, so this page cannot open it. Reload the page to get the newest webtune.',
  blocked: () =>
    'webtune is open in another tab that uses an older storage layout. Close the other webtune tabs, then reload this page.',
  failed: (action: string, detail: string) =>
    `webtune could not ${action} (${detail}). Try again; nothing already saved was lost.`,
} satisfies Record<StorageProblem, (action: string, detail: string) => string>;

/** A StorageError for a problem that has no underlying exception (no IndexedDB at all, a blocked upgrade). */
export function storageError(problem: StorageProblem, action = 'open its storage'): StorageError {
  return new StorageError(problem, messages[problem](action, problem));
}

/** DOMException names that mean the same thing across browsers (Firefox once had its own for quota). */
const problemByName: Record<string, StorageProblem> = {
  QuotaExceededError: 'quota',
  NS_ERROR_DOM_QUOTA_REACHED: 'quota',
  VersionError: 'version',
};

/**
 * Turns whatever IndexedDB threw while doing `action` ("save the dataset "a.csv"") into a StorageError.
 * While opening, a refusal we do not recognise means storage is unavailable here (private windows
 * report it as InvalidStateError, SecurityError or UnknownError depending on the browser).
 */
export function toStorageError(error: unknown, action: string, opening = false): StorageError {
  if (error instanceof StorageError) return error;
  const name = typeof (error as { name?: unknown })?.name === 'string' ? (error as Error).name : 'Error';
  const problem = problemByName[name] ?? (opening ? 'unavailable' : 'failed');
  const detail = `${name}: ${(error as Error)?.message ?? String(error)}`;
  return new StorageError(problem, messages[problem](action, detail), { cause: error });
}
