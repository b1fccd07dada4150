/**
 * A person's Hugging Face access token: checked with the Hub's whoami endpoint (through Hugging Face's own
 * client, @huggingface/hub), shown masked, and sent only to the endpoint it was given for. The token is
 * never put in an error message: every message here names the endpoint and the account, not the token.
 */
import { whoAmI } from '@huggingface/hub';
import { DEFAULT_ENDPOINT, HubError, normalizeEndpoint } from './resolve';

/** Who a token belongs to and what it may do, as whoami answers. */
export interface HubAccount {
  /** The user (or organisation) name: the owner of repositories pushed with it. */
  name: string;
  /** The token's role: read, write, or fineGrained (per-repository permissions chosen on the Hub). */
  role: string;
  /** The name the person gave the token on the Hub, when it has one. */
  tokenName: string | null;
  /** Organisations the account belongs to (where it may also push, if the token allows). */
  orgs: string[];
  /** The endpoint the token was checked against: the only one it is sent to. */
  endpoint: string;
  /** The token masked (`hf_…wxyz`), to tell which one is kept. */
  masked: string;
}

/** What a token may hold: the Hub's start with `hf_` (the client refuses others); no spaces or controls. */
const TOKEN_SHAPE = /^hf_[\x21-\x7e]{4,508}$/;

/** The token as pasted, trimmed, or a HubError saying what is wrong (without repeating it). */
export function checkTokenShape(raw: string): string {
  const token = raw.trim();
  if (token === '')
    throw new HubError(
      'No token was given. Paste an access token from huggingface.co/settings/tokens (it starts with hf_).',
    );
  if (!TOKEN_SHAPE.test(token))
    throw new HubError(
      'That is not an access token: a token is one word that starts with hf_, without spaces. ' +
        'Copy it again from huggingface.co/settings/tokens (it starts with hf_).',
    );
  return token;
}

/** "hf_…wxyz": enough to tell two tokens apart, never enough to use one. */
export function maskToken(token: string): string {
  return `${token.startsWith('hf_') ? 'hf_' : ''}…${token.slice(-4)}`;
}

/**
 * Whether `token`, given for `tokenEndpoint`, may be sent to `endpoint`: only the very origin it was given
 * for. A link or a setting that points the page at another server never takes the token along.
 */
export function tokenGoesTo(tokenEndpoint: string, endpoint: string): boolean {
  return normalizeEndpoint(tokenEndpoint) === normalizeEndpoint(endpoint);
}

/**
 * The token's account and role, from whoami. A token the Hub refuses, a network failure and any other
 * answer each become a HubError in words; the token itself is in none of them.
 */
export async function checkToken(
  token: string,
  options: { endpoint?: string; fetch?: typeof fetch } = {},
): Promise<HubAccount> {
  const endpoint = normalizeEndpoint(options.endpoint ?? DEFAULT_ENDPOINT);
  const host = new URL(endpoint).host;
  const accessToken = checkTokenShape(token);
  let answer: Awaited<ReturnType<typeof whoAmI>>;
  try {
    answer = await whoAmI({ accessToken, hubUrl: endpoint, fetch: options.fetch });
  } catch (error) {
    const status = (error as { statusCode?: number }).statusCode;
    if (status === 401)
      throw new HubError(
        `${host} does not accept this token (401): it is mistyped, expired or deleted. ` +
          'Make a new one at huggingface.co/settings/tokens and paste it again.',
        401,
      );
    if (status === 429)
      throw new HubError(`${host} is rate-limiting requests (429). Wait a minute and check again.`, 429);
    if (status !== undefined)
      throw new HubError(`${host} could not check the token (answer ${status}). Try again later.`, status);
    throw new HubError(
      `Could not reach ${host} to check the token. Check your connection and try again; nothing was saved.`,
    );
  }
  const auth = answer.auth?.accessToken;
  return {
    name: answer.name,
    role: auth?.role ?? 'unknown',
    tokenName: auth?.displayName ?? null,
    orgs: 'orgs' in answer && Array.isArray(answer.orgs) ? answer.orgs.map((org) => org.name) : [],
    endpoint,
    masked: maskToken(accessToken),
  };
}

/** The role in words: what publishing needs is write (or a fine-grained token with write on the repo). */
export function describeRole(role: string): string {
  if (role === 'write') return 'write: may download gated models and publish adapters';
  if (role === 'read') return 'read: may download gated models you have accepted, cannot publish';
  if (role === 'fineGrained') return 'fine-grained: may do what its permissions on the Hub allow';
  return role;
}
