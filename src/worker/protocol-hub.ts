/**
 * The worker protocol's Hub requests: models by id and their device cache, the person's access token,
 * adapters added by id, and publishing an adapter. protocol.ts's `Requests` extends `HubRequests`.
 */
import type { ModelArgs } from '../engine/config';
import type { DownloadProgress } from '../hub/download';
import type { Published, PublishProgress } from '../hub/publish';
import type { HubAccount } from '../hub/token';
import type { AdapterSummary } from '../store/adapters';

export type { HubAccount, Published, PublishProgress };

export interface HubLoadRequest {
  id: string;
  revision: string;
  endpoint: string;
}

/** Progress of a Hub download: config.json accepted, then bytes per file. */
export type HubEvent = { kind: 'config'; args: ModelArgs } | { kind: 'progress'; progress: DownloadProgress };

/** A model revision in the device cache: `<host>/<owner>/<name>/<revision>`. */
export interface CachedModel {
  key: string;
  bytes: number;
}

/** The saved token's account (the token itself never comes back to the page), or null: none saved. */
export type TokenAction =
  { action: 'status' } | { action: 'save'; token: string; endpoint: string } | { action: 'forget' };

/** What publishing an adapter will send, shown to the person before anything is sent. */
export interface PublishDraft {
  /** `<user>/<adapter name>`, the default repository. */
  repo: string;
  /** The generated model card, for the person to edit. */
  card: string;
  /** The PEFT files, with their sizes. */
  files: { path: string; bytes: number }[];
  /** The dataset's file, when the adapter's dataset is still on this device (sent only if ticked). */
  dataset: { path: string; bytes: number } | null;
  /** Where it goes, and as whom. */
  endpoint: string;
  account: string;
}

export interface PublishAdapterRequest {
  adapterId: string;
  /** The page's Hub endpoint: the saved token must have been given for it. */
  endpoint: string;
  repo: string;
  private: boolean;
  /** The model card as the person left it. */
  card: string;
  includeDataset: boolean;
}

export interface HubRequests {
  cancelDownload: { params: Record<string, never>; result: boolean };
  cachedModels: { params: Record<string, never>; result: CachedModel[] };
  deleteCachedModel: { params: { key: string }; result: CachedModel[] };
  /** Checks and saves, reports, or forgets the person's Hub token. */
  hubToken: { params: TokenAction; result: HubAccount | null };
  /** What publishing the library adapter would send (nothing is sent). */
  publishDraft: { params: { adapterId: string; endpoint: string }; result: PublishDraft };
  /** Creates the repository and uploads the adapter's files and card: only on the person's press. */
  publishAdapter: { params: PublishAdapterRequest; result: Published };
  cancelPublish: { params: Record<string, never>; result: boolean };
  /** Downloads a PEFT adapter by Hub id, checks it against the loaded model, and adds it to the library. */
  addHubAdapter: { params: HubLoadRequest; result: AdapterSummary };
}
