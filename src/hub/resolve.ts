/**
 * Where a model's files live on the Hugging Face Hub (or a mirror):
 * `<endpoint>/<id>/resolve/<revision>/<file>`, and what the Hub's answers mean in plain words.
 */
export const DEFAULT_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';

export class HubError extends Error {
  override name = 'HubError';
  constructor(
    message: string,
    /** The HTTP status, when the Hub answered. */
    readonly status?: number,
    /** The Hub's X-Error-Code (RepoNotFound, GatedRepo, …), when it gave one. */
    readonly code?: string,
  ) {
    super(message);
  }
}

/** "owner/name": letters, digits, '-', '_', '.'; not a path (no leading '.', '/' or '~'). */
export function isHubId(text: string): boolean {
  return /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/.test(text) && !text.includes('..');
}

export function checkHubId(id: string): string {
  const trimmed = id.trim();
  if (!isHubId(trimmed))
    throw new HubError(
      `"${id}" is not a model id. A model id looks like owner/name, for example HuggingFaceTB/SmolLM2-135M-Instruct.`,
    );
  return trimmed;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * The endpoint as a bare origin (`https://host[:port]`), or a HubError naming it. Files are fetched from
 * `endpoint + /<id>/resolve/…`, so an endpoint with a path could point a well-known model id at anyone's
 * files (`https://huggingface.co/attacker/repo/resolve/main/x`); a path, query, fragment or login is
 * refused, and plain http is allowed only on this machine.
 */
export function normalizeEndpoint(text: string): string {
  const refuse = (why: string) =>
    new HubError(
      `"${text}" cannot be used as the Hub endpoint: ${why}. An endpoint is a bare origin such as ${DEFAULT_ENDPOINT}, with no path, query or login.`,
    );
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw refuse('it is not a URL');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname)))
    throw refuse('it must use https (plain http only for 127.0.0.1 or localhost)');
  if (url.username || url.password) throw refuse('it carries a login');
  if (url.pathname !== '/' || url.search || url.hash || /[?#]$/.test(text.trim()))
    throw refuse('it has a path, query or fragment');
  return url.origin;
}

/** True for the Hugging Face Hub itself (not a mirror). */
export function isOfficialHub(endpoint: string): boolean {
  return normalizeEndpoint(endpoint) === DEFAULT_ENDPOINT;
}

export function resolveUrl(endpoint: string, id: string, revision: string, file: string): string {
  const path = file.split('/').map(encodeURIComponent).join('/');
  return `${endpoint.replace(/\/+$/, '')}/${id}/resolve/${encodeURIComponent(revision)}/${path}`;
}

/** The page of a repository on the Hub (or the mirror), where its licence is accepted. */
export function repoPage(endpoint: string, id: string): string {
  return `${endpoint.replace(/\/+$/, '')}/${id}`;
}

/** How a file was asked for: with the person's token or without, from which endpoint. */
export interface AskedWith {
  withToken: boolean;
  endpoint?: string;
}

/** The Hub's error for a file request, in words that say what to do. */
export function hubError(
  response: Pick<Response, 'status' | 'statusText' | 'headers'>,
  id: string,
  file: string,
  revision: string,
  asked: AskedWith = { withToken: false },
): HubError {
  const code = response.headers.get('X-Error-Code');
  const { status } = response;
  const page = repoPage(asked.endpoint ?? DEFAULT_ENDPOINT, id);
  // A private repository the request may not read is "not found" too (401 without a token, 404 with one).
  if ((status === 404 || status === 401) && code === 'RepoNotFound')
    return new HubError(
      `There is no model "${id}" on the Hub (or it is private${asked.withToken ? ' to another account' : ''}). ` +
        "Check the id's spelling, owner/name.",
      status,
      code,
    );
  if (status === 404 && code === 'RevisionNotFound')
    return new HubError(
      `The model ${id} has no revision "${revision}". Use main, a branch or a commit of it.`,
      status,
    );
  if (status === 404)
    return new HubError(
      `The model ${id} has no file ${file}. webtune needs a model in Hugging Face layout with safetensors weights.`,
      status,
    );
  if ((status === 401 || status === 403) && code === 'GatedRepo')
    return new HubError(
      asked.withToken
        ? `${id} is gated and your account has not been given access yet (${status}). Open ${page}, accept ` +
            'its licence (some owners approve requests by hand), then load it again.'
        : `${id} is gated (${status}): it downloads only with a Hugging Face access token, after you accept ` +
            `its licence at ${page}. Add your token under "Hugging Face account" (the CLI reads HF_TOKEN), ` +
            'then load it again.',
      status,
    );
  if (status === 401 || status === 403)
    return new HubError(
      asked.withToken
        ? `The Hub refused ${file} of ${id} (${status}) even with your token: the repository is private to ` +
            `another account, or the token may not read it. Check ${page} and the token's permissions.`
        : `The Hub refused ${file} of ${id} (${status}): the model is gated or private. Add a Hugging Face ` +
            `access token that may read it (the CLI reads HF_TOKEN), or pick another model; see ${page}.`,
      status,
    );
  if (status === 429)
    return new HubError(
      `The Hub is rate-limiting downloads (429). Wait a minute and load the model again; finished files are kept.`,
      status,
    );
  if (status >= 500)
    return new HubError(
      `The Hub had a problem sending ${file} (${status} ${response.statusText}). Try again in a moment; what was downloaded is kept.`,
      status,
    );
  return new HubError(`The Hub answered ${status} ${response.statusText} for ${file} of ${id}.`, status);
}
