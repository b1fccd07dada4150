/**
 * The Hub with the person's token, against the Hub double (tests/helpers/hub-server.ts + hub-api.ts), driven
 * through the worker's host as the page drives it: the token checked with whoami and kept in its own
 * database; an adapter published (files and card arrive byte for byte, privately, through
 * @huggingface/hub) and every Hub error in words; an adapter added by id and checked like a zip; and the
 * token found in no request that did not need it, no stored record, no export and no error message.
 */
import 'fake-indexeddb/auto';
import fs from 'node:fs';
import { strFromU8, unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkToken, maskToken } from '../src/hub/token';
import { TOKEN_DATABASE } from '../src/store/hub-token';
import { getAdapter, saveAdapter, type AdapterSummary } from '../src/store/adapters';
import { saveDataset } from '../src/store/datasets';
import { HostDriver } from './helpers/host';
import { startHubServer, type HubServer } from './helpers/hub-server';
import { adapterZip } from './helpers/hub-adapter';
import { dataFile } from './helpers/paths';

const WRITER = 'hf_writeTokenOfAda0123456789';
const READER = 'hf_readOnlyTokenOfBob987654';
const TOKENS = [WRITER, READER];

/** Every record of every store of an IndexedDB database, as text. */
async function databaseText(name: string): Promise<string> {
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const open = indexedDB.open(name);
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  const parts: string[] = [];
  for (const store of [...db.objectStoreNames]) {
    const all = await new Promise<unknown[]>((resolve) => {
      const request = db.transaction(store).objectStore(store).getAll();
      request.onsuccess = () => resolve(request.result);
    });
    for (const record of all)
      parts.push(
        JSON.stringify(record, (_k, v: unknown) =>
          v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v,
        ),
      );
  }
  db.close();
  return parts.join('\n');
}

describe('the Hub with a token', () => {
  let hub: HubServer;
  let driver: HostDriver;
  const errors: string[] = [];
  /** The promise's error message, kept to search for the token at the end. */
  const failure = async (promise: Promise<unknown>) => {
    const message = await promise.then(
      () => 'no error',
      (error: Error) => error.message,
    );
    errors.push(message);
    return message;
  };

  beforeAll(async () => {
    hub = await startHubServer({
      repos: { 'webtune-test/stories260K': 'fixtures/models/stories260K' },
      tokens: {
        [WRITER]: { name: 'ada', role: 'write', orgs: ['webtune-org'] },
        [READER]: { name: 'bob', role: 'read' },
      },
    });
    driver = new HostDriver();
    await driver.loadFixture();
  });
  afterAll(async () => {
    driver.dispose();
    await hub.close();
  });

  it('checks a token with whoami and refuses a wrong one without repeating it', async () => {
    expect(await checkToken(WRITER, { endpoint: hub.url })).toMatchObject({
      name: 'ada',
      role: 'write',
      orgs: ['webtune-org'],
      endpoint: hub.url,
    });
    const wrong = 'hf_notAKnownToken0000';
    const message = await failure(checkToken(wrong, { endpoint: hub.url }));
    expect(message).toMatch(/does not accept this token \(401\)/);
    expect(message).not.toContain(wrong);
    expect(await failure(checkToken('my password', { endpoint: hub.url }))).toMatch(/starts with hf_/);
    hub.api.setFault('whoami', { kind: 'status', status: 429 });
    expect(await failure(checkToken(WRITER, { endpoint: hub.url }))).toMatch(
      /rate-limiting requests \(429\)/,
    );
    hub.api.setFault('whoami', { kind: 'drop' });
    expect(await failure(checkToken(WRITER, { endpoint: hub.url }))).toMatch(
      /Could not reach 127\.0\.0\.1:\d+ to check the token\. .*nothing was saved/,
    );
    expect(maskToken(WRITER)).toBe('hf_…6789');
    // Nothing was saved by a refused token.
    expect(await driver.send('hubToken', { action: 'status' })).toBeNull();
  });

  it('saves a checked token in its own database, says whose it is, and forgets it', async () => {
    const account = await driver.send('hubToken', { action: 'save', token: READER, endpoint: hub.url });
    expect(account).toMatchObject({ name: 'bob', role: 'read' });
    expect(await databaseText(TOKEN_DATABASE)).toContain(READER);
    expect(await driver.send('hubToken', { action: 'status' })).toMatchObject({ name: 'bob' });
    expect(await driver.send('hubToken', { action: 'forget' })).toBeNull();
    expect(await driver.send('hubToken', { action: 'status' })).toBeNull();
    expect(await databaseText(TOKEN_DATABASE)).not.toContain(READER);
  });

  let published: AdapterSummary;
  let zip: Uint8Array;
  it('publishes an adapter privately: the PEFT files and the edited card arrive byte for byte', async () => {
    zip = adapterZip();
    published = await driver.send('importAdapter', { bytes: zip, fileName: 'tickets.zip' });
    await driver.send('hubToken', { action: 'save', token: WRITER, endpoint: hub.url });
    const draft = await driver.send('publishDraft', { adapterId: published.id, endpoint: hub.url });
    expect(draft.repo).toBe('ada/tickets');
    expect(draft.files.map((f) => f.path)).toEqual([
      'adapter_config.json',
      'adapter_model.safetensors',
      'README.md',
    ]);
    // The card says how to load it by id with PEFT and webtune, and has the Hub's front matter.
    expect(draft.card).toMatch(/^---\nbase_model: "webtune-test\/stories260K"\nlibrary_name: peft\n/);
    expect(draft.card).toContain('PeftModel.from_pretrained(base, "ada/tickets")');
    expect(draft.card).toContain('--adapter ada/tickets');
    hub.requests.length = 0;
    const card = `${draft.card}\nEdited by hand before the upload.\n`;
    const phases: string[] = [];
    const result = await driver.send(
      'publishAdapter',
      {
        adapterId: published.id,
        endpoint: hub.url,
        repo: draft.repo,
        private: true,
        card,
        includeDataset: false,
      },
      (event) => {
        const e = event as { kind: string; phase?: string };
        if (e.kind === 'phase') phases.push(e.phase!);
      },
    );
    expect(result.url).toBe(`${hub.url}/ada/tickets`);
    expect(phases).toEqual(['creating', 'preuploading', 'uploadingLargeFiles', 'committing']);
    const repo = hub.api.pushed.get('ada/tickets')!;
    expect(repo.private).toBe(true);
    const original = unzipSync(zip);
    expect([...repo.files.keys()].sort()).toEqual([
      'README.md',
      'adapter_config.json',
      'adapter_model.safetensors',
    ]);
    expect(repo.files.get('adapter_config.json')!.equals(original['adapter_config.json'])).toBe(true);
    expect(repo.files.get('adapter_model.safetensors')!.equals(original['adapter_model.safetensors'])).toBe(
      true,
    );
    expect(repo.files.get('README.md')!.toString('utf8')).toBe(card);

    // The token went with exactly the requests that need it, and not to the storage upload.
    const calls = hub.requests.filter((r) => r.method !== 'OPTIONS');
    const withToken = calls.filter((r) => r.raw.includes(WRITER)).map((r) => `${r.method} ${r.path}`);
    expect(withToken).toEqual([
      'POST /api/repos/create',
      'POST /api/models/ada/tickets/preupload/main',
      'POST /ada/tickets.git/info/lfs/objects/batch',
      'POST /api/models/ada/tickets/commit/main',
    ]);
    const upload = calls.find((r) => r.method === 'PUT')!;
    expect(upload.path).toMatch(/^\/lfs-storage\/ada\/tickets\/[0-9a-f]{64}$/);
    expect(upload.authorization).toBeNull();
  });

  it('says what went wrong for each Hub error', async () => {
    const publish = (repo: string) =>
      failure(
        driver.send('publishAdapter', {
          adapterId: published.id,
          endpoint: hub.url,
          repo,
          private: true,
          card: '# card\n',
          includeDataset: false,
        }),
      );
    expect(await publish('ada/tickets')).toMatch(
      /ada\/tickets already exists on 127\.0\.0\.1:\d+\. Pick another/,
    );
    expect(await publish('someone-else/tickets')).toMatch(
      /may not write to "someone-else" .*\(403\).*write permission/,
    );
    hub.api.setFault('batch', { kind: 'status', status: 429 });
    expect(await publish('ada/rate-limited')).toMatch(/rate-limiting uploads \(429\)/);
    hub.api.setFault('preupload', { kind: 'drop' });
    expect(await publish('ada/dropped')).toMatch(
      /Could not reach 127\.0\.0\.1:\d+ while uploading to ada\/dropped/,
    );
    expect(hub.api.pushed.get('ada/dropped')!.commits).toEqual([]);
    // Cancelled once the upload starts: nothing is committed.
    const cancelled = driver.send(
      'publishAdapter',
      {
        adapterId: published.id,
        endpoint: hub.url,
        repo: 'ada/cancelled',
        private: true,
        card: '#\n',
        includeDataset: false,
      },
      (event) => {
        if ((event as { phase?: string }).phase === 'creating') void driver.send('cancelPublish', {});
      },
    );
    expect(await failure(cancelled)).toMatch(/Publishing cancelled: nothing was committed/);
    expect(hub.api.pushed.get('ada/cancelled')!.commits).toEqual([]);
    // A read-only token cannot create a repository.
    await driver.send('hubToken', { action: 'save', token: READER, endpoint: hub.url });
    expect(await publish('bob/tickets')).toMatch(/may not write to "bob".*\(403\)/);
    // Without a token nothing is sent at all.
    await driver.send('hubToken', { action: 'forget' });
    hub.requests.length = 0;
    expect(await publish('ada/none')).toMatch(/needs your Hugging Face access token/);
    expect(hub.requests).toEqual([]);
  });

  it('adds a published adapter by id, checked like a zip, with where it came from', async () => {
    await driver.send('hubToken', { action: 'save', token: WRITER, endpoint: hub.url });
    const added = await driver.send('addHubAdapter', {
      id: 'ada/tickets',
      revision: 'main',
      endpoint: hub.url,
    });
    expect(added).toMatchObject({ name: 'tickets', origin: 'imported', source: 'hf:ada/tickets' });
    // The library keeps the files as the Hub sent them: the bytes that were published.
    const kept = unzipSync((await getAdapter(added.id))!.zip);
    const original = unzipSync(zip);
    for (const file of ['adapter_config.json', 'adapter_model.safetensors'])
      expect(Buffer.from(kept[file]).equals(Buffer.from(original[file])), file).toBe(true);
    await driver.send('useAdapter', { id: added.id });
    // Private: without the owner's token the double says it does not exist.
    await driver.send('hubToken', { action: 'forget' });
    expect(
      await failure(driver.send('addHubAdapter', { id: 'ada/tickets', revision: 'v2', endpoint: hub.url })),
    ).toMatch(/has no adapter_config\.json, or does not exist/);
    expect(
      await failure(
        driver.send('addHubAdapter', { id: 'webtune-test/stories260K', revision: 'main', endpoint: hub.url }),
      ),
    ).toMatch(/not a PEFT adapter repository/);
  });

  it('names the dataset in the card but sends its rows only when the person ticks it', async () => {
    const csv = new Uint8Array(fs.readFileSync(dataFile('support-tickets.csv')));
    const dataset = await saveDataset({
      name: 'tickets',
      fileName: 'support-tickets.csv',
      bytes: csv,
      mapping: null,
      rows: 20,
    });
    const trained = await saveAdapter({
      name: 'Ticket Router',
      modelName: 'webtune-test/stories260K',
      datasetId: dataset.id,
      datasetName: 'support-tickets.csv',
      settings: { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj'], epochs: 3, learningRate: 0.005 },
      trainLoss: 0.5,
      valLoss: 0.75,
      lossHistory: [],
      origin: 'trained',
      zip,
    });
    await driver.send('hubToken', { action: 'save', token: WRITER, endpoint: hub.url });
    const draft = await driver.send('publishDraft', { adapterId: trained.id, endpoint: hub.url });
    expect(draft.repo).toBe('ada/ticket-router');
    expect(draft.dataset).toEqual({ path: 'data/support-tickets.csv', bytes: csv.byteLength });
    expect(draft.card).toContain('`support-tickets.csv` (not published: only its name is given here)');
    expect(draft.card).toContain('| LoRA rank | 4 |');
    expect(draft.card).toContain('Final loss: training 0.500, validation 0.750');
    // Not a word of any row.
    expect(draft.card).not.toContain('charged twice');
    const send = (repo: string, includeDataset: boolean) =>
      driver.send('publishAdapter', {
        adapterId: trained.id,
        endpoint: hub.url,
        repo,
        private: true,
        card: draft.card,
        includeDataset,
      });
    await send('ada/ticket-router', false);
    expect([...hub.api.pushed.get('ada/ticket-router')!.files.keys()].sort()).toEqual([
      'README.md',
      'adapter_config.json',
      'adapter_model.safetensors',
    ]);
    await send('ada/ticket-router-with-data', true);
    const withData = hub.api.pushed.get('ada/ticket-router-with-data')!;
    expect(withData.files.get('data/support-tickets.csv')!.equals(Buffer.from(csv))).toBe(true);
  });

  it('never writes the token into a library record, an export or an error message', async () => {
    const library = await databaseText('webtune');
    expect(library.length).toBeGreaterThan(1000);
    for (const token of TOKENS) expect(library).not.toContain(token);
    const exported = await driver.send('exportAdapter', {
      adapterId: published.id,
      format: 'gguf-lora',
      modelFiles: driver.pickedFiles(),
    });
    const bytes = new Uint8Array(await exported.file.arrayBuffer());
    for (const [name, content] of Object.entries(unzipSync(bytes)))
      for (const token of TOKENS) expect(strFromU8(content, true), name).not.toContain(token);
    expect(errors.length).toBeGreaterThan(8);
    for (const token of TOKENS) for (const message of errors) expect(message).not.toContain(token);
  });
});
