/**
 * The CLI's Hugging Face token: HF_TOKEN, else the file `huggingface-cli login` (`hf auth login`) writes
 * (HF_TOKEN_PATH, $HF_HOME/token, ~/.cache/huggingface/token). It is sent to huggingface.co; to any other
 * endpoint (a mirror, HF_ENDPOINT) only when the person names that endpoint with --send-token-to, so a
 * mirror setting never carries the token somewhere by itself.
 */
import fs from 'node:fs';
import { DEFAULT_ENDPOINT, normalizeEndpoint } from '../hub/resolve';
import type { NodeEnvironment } from '../node/environment';
import { CliError } from './errors';

/** The token and where it was read from (for messages; the token itself is never printed). */
export function readCliToken(
  env: Pick<NodeEnvironment, 'hfToken' | 'hfTokenFile'>,
): { token: string; from: string } | null {
  if (env.hfToken) return { token: env.hfToken, from: 'HF_TOKEN' };
  let text: string;
  try {
    text = fs.readFileSync(env.hfTokenFile, 'utf8');
  } catch {
    return null;
  }
  const token = text.split(/\r?\n/)[0].trim();
  return token ? { token, from: env.hfTokenFile } : null;
}

/**
 * The token for downloads from `endpoint`, or undefined: none is set, or the endpoint is not the Hub and
 * the person did not name it with --send-token-to (then a line says so, once).
 */
export function tokenForEndpoint(
  endpoint: string,
  sendTokenTo: string | undefined,
  env: Pick<NodeEnvironment, 'hfToken' | 'hfTokenFile'>,
  progress: (line: string) => void,
): string | undefined {
  const origin = normalizeEndpoint(endpoint);
  let named: string | undefined;
  if (sendTokenTo !== undefined) {
    try {
      named = normalizeEndpoint(sendTokenTo);
    } catch (error) {
      throw new CliError(`--send-token-to: ${(error as Error).message}`);
    }
    if (named !== origin)
      throw new CliError(
        `--send-token-to ${named} is not the endpoint in use (${origin}); the token goes only to the ` +
          'endpoint you name. Pass the same origin as --hf-endpoint or HF_ENDPOINT.',
      );
  }
  const found = readCliToken(env);
  if (!found) return undefined;
  if (origin === DEFAULT_ENDPOINT || named === origin) return found.token;
  progress(
    `not sending your Hugging Face token (${found.from}) to ${origin}: it is not ${DEFAULT_ENDPOINT}. ` +
      `Pass --send-token-to ${origin} to send it there.`,
  );
  return undefined;
}
