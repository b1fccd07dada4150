/**
 * Publishing files to a new repository on the Hub with Hugging Face's own client, @huggingface/hub:
 * `createRepo` makes the repository (private unless asked), and `commitIter` does the rest — asks the Hub
 * which files go to LFS (preupload), hashes those, asks the LFS batch endpoint where to put them, uploads
 * them there (to a signed storage URL, without the token), and commits every file in one commit, with
 * progress and cancellation. Xet storage is turned off (`useXet: false`): the plain LFS upload needs no
 * extra hosts and no extra WebAssembly. Every failure becomes a HubError in words; none holds the token.
 */
import { commitIter, createRepo } from '@huggingface/hub';
import { HubError, isHubId, normalizeEndpoint, repoPage } from './resolve';

export interface PublishFile {
  path: string;
  bytes: Uint8Array;
}

export type PublishPhase = 'creating' | 'preuploading' | 'uploadingLargeFiles' | 'committing';

export type PublishProgress =
  | { kind: 'phase'; phase: PublishPhase }
  | { kind: 'file'; path: string; fraction: number; state: 'hashing' | 'uploading' };

export interface PublishRequest {
  /** owner/name: the person's own name or an organisation the token may write to. */
  repo: string;
  /** Private unless the person unticks it. */
  private: boolean;
  files: PublishFile[];
  token: string;
  endpoint: string;
  commitTitle?: string;
  signal?: AbortSignal;
  fetch?: typeof fetch;
  onProgress?: (progress: PublishProgress) => void;
}

export interface Published {
  /** The repository's page. */
  url: string;
  commit: string;
}

export class PublishCancelled extends HubError {
  override name = 'PublishCancelled';
}

/** The error of one step in words: what happened, and what to do. */
function publishError(error: unknown, step: 'create' | 'upload', request: PublishRequest): HubError {
  const host = new URL(request.endpoint).host;
  const owner = request.repo.split('/')[0];
  if (request.signal?.aborted || (error as Error)?.name === 'AbortError')
    return new PublishCancelled(
      step === 'create'
        ? `Publishing cancelled before anything was sent to ${request.repo}.`
        : `Publishing cancelled: nothing was committed, so ${request.repo} on ${host} holds none of these files. ` +
            'Publish again to send them.',
    );
  const status = (error as { statusCode?: number }).statusCode;
  if (status === 409)
    return new HubError(
      `${request.repo} already exists on ${host}. Pick another repository name; webtune publishes into a new ` +
        'repository only, so nothing of yours is overwritten.',
      409,
    );
  if (status === 401)
    return new HubError(
      `${host} does not accept your token any more (401). Forget it, paste a new one, and publish again.`,
      401,
    );
  if (status === 403)
    return new HubError(
      `Your token may not write to "${owner}" on ${host} (403). Make a token with write permission (or a ` +
        `fine-grained one allowed to write to ${owner}) at huggingface.co/settings/tokens, paste it, and try again.`,
      403,
    );
  if (status === 429)
    return new HubError(`${host} is rate-limiting uploads (429). Wait a few minutes and publish again.`, 429);
  if (status !== undefined)
    return new HubError(
      `${host} answered ${status} while ${step === 'create' ? 'creating' : 'uploading to'} ${request.repo}` +
        `${step === 'upload' ? '; nothing was committed' : ''}. Try again later.`,
      status,
    );
  return new HubError(
    `Could not reach ${host} while ${step === 'create' ? 'creating' : 'uploading to'} ${request.repo} ` +
      `(${(error as Error)?.message ?? 'no answer'}). Check your connection and publish again` +
      `${step === 'upload' ? ` with another name, or delete the empty repository at ${repoPage(request.endpoint, request.repo)} first` : ''}.`,
  );
}

/** Creates the repository and commits the files to it; resolves once the commit is on the Hub. */
export async function publishFiles(request: PublishRequest): Promise<Published> {
  if (!isHubId(request.repo.trim()))
    throw new HubError(
      `"${request.repo}" cannot be a repository name. Write it as owner/name: your user name (or an ` +
        'organisation), a slash, and letters, digits, "-", "_" or "." — for example ada/smollm2-tickets.',
    );
  const repo = request.repo.trim();
  const endpoint = normalizeEndpoint(request.endpoint);
  const common = { accessToken: request.token, hubUrl: endpoint, fetch: request.fetch };
  const report = request.onProgress ?? (() => {});
  if (request.signal?.aborted) throw publishError(new DOMException('', 'AbortError'), 'create', request);
  report({ kind: 'phase', phase: 'creating' });
  try {
    await createRepo({ ...common, repo: { type: 'model', name: repo }, private: request.private });
  } catch (error) {
    throw publishError(error, 'create', request);
  }
  // The client listens for an abort that is still to come: one that came during creation is checked here.
  if (request.signal?.aborted) throw publishError(new DOMException('', 'AbortError'), 'upload', request);
  try {
    const steps = commitIter({
      ...common,
      repo: { type: 'model', name: repo },
      title: request.commitTitle ?? 'Add a LoRA adapter trained with webtune',
      operations: request.files.map((file) => ({
        operation: 'addOrUpdate' as const,
        path: file.path,
        content: new Blob([file.bytes as Uint8Array<ArrayBuffer>]),
      })),
      abortSignal: request.signal,
      useXet: false,
      useWebWorkers: false,
    });
    for (;;) {
      const step = await steps.next();
      if (step.done) {
        if (!step.value) throw new Error('the Hub did not say which commit it made');
        return { url: repoPage(endpoint, repo), commit: step.value.commit.oid };
      }
      const event = step.value;
      if (event.event === 'phase') report({ kind: 'phase', phase: event.phase });
      else if (event.state !== 'error')
        report({ kind: 'file', path: event.path, fraction: event.progress, state: event.state });
    }
  } catch (error) {
    throw publishError(error, 'upload', request);
  }
}
