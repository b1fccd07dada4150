/**
 * The person's Hugging Face token, kept in this browser only: in its own IndexedDB database,
 * `webtune-hub-token` (one record, key `token`), apart from webtune's datasets, runs and adapters, so
 * no other record, list or export ever holds it. Forgetting it deletes that record.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { HubAccount } from '../hub/token';

export const TOKEN_DATABASE = 'webtune-hub-token';

/** The token with what whoami said of it, and the endpoint it is sent to (and only to). */
export interface SavedToken {
  token: string;
  account: HubAccount;
  savedAt: number;
}

interface TokenSchema extends DBSchema {
  token: { key: string; value: SavedToken };
}

const KEY = 'token';

function open(): Promise<IDBPDatabase<TokenSchema>> {
  return openDB<TokenSchema>(TOKEN_DATABASE, 1, {
    upgrade: (db) => void db.createObjectStore('token'),
  });
}

/** Runs `work` on the open database and closes it, so forgetting leaves nothing open behind. */
async function withDatabase<T>(work: (db: IDBPDatabase<TokenSchema>) => Promise<T>): Promise<T> {
  let db: IDBPDatabase<TokenSchema>;
  try {
    db = await open();
  } catch (error) {
    throw new Error(
      `This browser's storage cannot be opened to keep the token (${(error as Error).name}). ` +
        'A private window may not allow it: open webtune in a normal window to use a token.',
      { cause: error },
    );
  }
  try {
    return await work(db);
  } finally {
    db.close();
  }
}

export const saveToken = (saved: SavedToken): Promise<void> =>
  withDatabase(async (db) => void (await db.put('token', saved, KEY)));

export const readToken = (): Promise<SavedToken | null> =>
  withDatabase(async (db) => (await db.get('token', KEY)) ?? null);

export const forgetToken = (): Promise<void> => withDatabase((db) => db.delete('token', KEY));
