/**
 * The page's Hugging Face state: the person's token (checked, kept and forgotten by the worker; the page
 * sees only whose it is, masked), publishing a library adapter (a draft of what will be sent, shown and
 * edited first; then the upload on the person's press, with progress and cancel), and adding an adapter by
 * Hub id. Nothing here runs without a click: a link cannot publish or show the token.
 */
import type { HubAccount, Published, PublishDraft, PublishProgress } from '../../worker/protocol-hub';
import { adapters } from './adapters.svelte';
import { engine } from './engine.svelte';

/** The publish form for one adapter, filled from the draft, then edited by the person. */
export interface PublishForm {
  adapterId: string;
  draft: PublishDraft;
  repo: string;
  private: boolean;
  includeDataset: boolean;
  card: string;
}

const PHASES: Record<string, string> = {
  creating: 'Creating the repository',
  preuploading: 'Asking the Hub where each file goes',
  uploadingLargeFiles: 'Uploading the weights',
  committing: 'Committing the files',
};

class HubState {
  account = $state<HubAccount | null>(null);
  /** A request about the token is running. */
  checking = $state(false);
  tokenError = $state<string | null>(null);
  form = $state<PublishForm | null>(null);
  /** The adapter the publish form, result or error is about. */
  target = $state<string | null>(null);
  publishing = $state<string | null>(null);
  published = $state<Published | null>(null);
  publishError = $state<string | null>(null);
  adding = $state<string | null>(null);
  addError = $state<string | null>(null);

  private async tokenRequest(work: () => Promise<HubAccount | null>): Promise<void> {
    this.tokenError = null;
    this.checking = true;
    try {
      this.account = await work();
    } catch (error) {
      this.tokenError = (error as Error).message;
    } finally {
      this.checking = false;
    }
  }

  /** Whose token is kept (none: null); asked once the engine is up. */
  refresh(): Promise<void> {
    return this.tokenRequest(async () => (await engine.start()).request('hubToken', { action: 'status' }));
  }

  save(token: string): Promise<void> {
    return this.tokenRequest(async () =>
      (await engine.start()).request('hubToken', { action: 'save', token, endpoint: engine.endpoint }),
    );
  }

  forget(): Promise<void> {
    this.form = null;
    return this.tokenRequest(async () => (await engine.start()).request('hubToken', { action: 'forget' }));
  }

  /** Opens the publish form: what would be sent, nothing sent yet. */
  async prepare(adapterId: string): Promise<void> {
    this.publishError = null;
    this.published = null;
    this.target = adapterId;
    try {
      const draft = await (
        await engine.start()
      ).request('publishDraft', { adapterId, endpoint: engine.endpoint });
      this.form = {
        adapterId,
        draft,
        repo: draft.repo,
        private: true,
        includeDataset: false,
        card: draft.card,
      };
    } catch (error) {
      this.publishError = (error as Error).message;
    }
  }

  async publish(): Promise<void> {
    const form = this.form;
    if (!form || !engine.client) return;
    this.publishError = null;
    this.publishing = 'Starting…';
    try {
      this.published = await engine.client.request(
        'publishAdapter',
        {
          adapterId: form.adapterId,
          endpoint: engine.endpoint,
          repo: form.repo.trim(),
          private: form.private,
          card: form.card,
          includeDataset: form.includeDataset,
        },
        (event: PublishProgress) => {
          this.publishing =
            event.kind === 'phase'
              ? `${PHASES[event.phase]}…`
              : `${event.state === 'hashing' ? 'Hashing' : 'Uploading'} ${event.path}: ${Math.round(event.fraction * 100)}%`;
        },
      );
      this.form = null;
    } catch (error) {
      this.publishError = (error as Error).message;
    } finally {
      this.publishing = null;
    }
  }

  cancelPublish(): void {
    void engine.client?.request('cancelPublish', {});
  }

  /** Downloads `user/adapter` (any revision), checks it against the loaded model, and puts it in the chat. */
  async add(id: string, revision: string): Promise<void> {
    this.addError = null;
    if (!engine.client || !engine.model) {
      this.addError = 'Load the base model first: an adapter is checked against the model it adapts.';
      return;
    }
    this.adding = `Downloading ${id.trim()}…`;
    try {
      const summary = await engine.client.request(
        'addHubAdapter',
        { id: id.trim(), revision: revision.trim() || 'main', endpoint: engine.endpoint },
        (event) => {
          if (event.kind === 'progress')
            this.adding = `Downloading ${event.progress.file}: ${Math.round(event.progress.done / 1024)} KB`;
        },
      );
      await adapters.refresh();
      await adapters.use(summary.id);
      adapters.notice = `Added ${summary.name} from the Hub (${summary.source}); the chat now uses it.`;
    } catch (error) {
      this.addError = (error as Error).message;
    } finally {
      this.adding = null;
    }
  }
}

export const hub = new HubState();
