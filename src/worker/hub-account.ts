/**
 * The person's Hub token in the worker: checked with whoami before it is kept, kept in its own IndexedDB
 * database (store/hub-token.ts), handed to downloads and uploads for the one endpoint it was given for,
 * and forgotten on request. The page gets the account back, never the token.
 */
import { checkToken, checkTokenShape, tokenGoesTo, type HubAccount } from '../hub/token';
import { forgetToken, readToken, saveToken } from '../store/hub-token';
import type { TokenAction } from './protocol-hub';

export class HubAccounts {
  constructor(private readonly fetchImpl?: typeof fetch) {}

  async act(request: TokenAction): Promise<HubAccount | null> {
    if (request.action === 'forget') {
      await forgetToken();
      return null;
    }
    // Where this browser keeps no storage (some private windows) there is simply no token yet.
    if (request.action === 'status') return (await readToken().catch(() => null))?.account ?? null;
    const token = checkTokenShape(request.token);
    // Kept only once the Hub has said whose it is: a mistyped token is never stored.
    const account = await checkToken(token, { endpoint: request.endpoint, fetch: this.fetchImpl });
    await saveToken({ token, account, savedAt: Date.now() });
    return account;
  }

  /** The saved token when it was given for `endpoint`; undefined otherwise (it goes nowhere else). */
  async tokenFor(endpoint: string): Promise<string | undefined> {
    const saved = await readToken().catch(() => null);
    return saved && tokenGoesTo(saved.account.endpoint, endpoint) ? saved.token : undefined;
  }

  /** The saved token and account for `endpoint`, or an error saying to add one (publishing needs it). */
  async require(endpoint: string): Promise<{ token: string; account: HubAccount }> {
    const saved = await readToken();
    if (!saved)
      throw new Error(
        'Publishing needs your Hugging Face access token (with write permission): add it under "Hugging Face account" first.',
      );
    if (!tokenGoesTo(saved.account.endpoint, endpoint))
      throw new Error(
        `Your token was given for ${saved.account.endpoint}, and this page now uses ${endpoint}; it is sent ` +
          'nowhere else. Forget it and add it again here if you mean to use this server.',
      );
    return saved;
  }
}
