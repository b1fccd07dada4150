/**
 * The CLI's model cache on disk (where: src/node/environment.ts): each file
 * `<key>` beside `<key>.meta.json` ({ etag, complete }), appended to as bytes arrive so a dropped
 * download resumes from what reached the disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { WeightsSource } from '../engine/weights-source';
import type { CachedFile, FileStore, FileWriter, PartialFile } from '../hub/store';
import { FileSource } from '../node/file-source';

const META = '.meta.json';

interface Meta {
  etag: string | null;
  complete: boolean;
}

export class FsStore implements FileStore {
  constructor(readonly dir: string) {}

  private file(key: string): string {
    const resolved = path.resolve(this.dir, key);
    if (!resolved.startsWith(path.resolve(this.dir) + path.sep))
      throw new Error(`Refusing a cache key outside the cache: ${key}`);
    return resolved;
  }

  private meta(key: string): Meta | null {
    try {
      return JSON.parse(fs.readFileSync(this.file(key) + META, 'utf8')) as Meta;
    } catch {
      return null;
    }
  }

  async read(key: string): Promise<Uint8Array | null> {
    if (!this.meta(key)?.complete) return null;
    const bytes = fs.readFileSync(this.file(key));
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async source(key: string): Promise<WeightsSource | null> {
    return this.meta(key)?.complete ? new FileSource(this.file(key)) : null;
  }

  async size(key: string): Promise<number | null> {
    return this.meta(key)?.complete ? fs.statSync(this.file(key)).size : null;
  }

  async partial(key: string): Promise<PartialFile | null> {
    const meta = this.meta(key);
    if (!meta || meta.complete) return null;
    return { size: fs.existsSync(this.file(key)) ? fs.statSync(this.file(key)).size : 0, etag: meta.etag };
  }

  async open(key: string, { etag, append }: { etag: string | null; append: boolean }): Promise<FileWriter> {
    const file = this.file(key);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const writeMeta = (meta: Meta) => fs.writeFileSync(file + META, JSON.stringify(meta));
    writeMeta({ etag, complete: false });
    const fd = fs.openSync(file, append ? 'a' : 'w');
    let open = true;
    const release = () => {
      if (open) fs.closeSync(fd);
      open = false;
    };
    return {
      write: async (chunk) => void fs.writeSync(fd, chunk),
      finish: async () => {
        release();
        writeMeta({ etag, complete: true });
      },
      close: async () => release(),
    };
  }

  async list(): Promise<CachedFile[]> {
    if (!fs.existsSync(this.dir)) return [];
    const found: CachedFile[] = [];
    for (const entry of fs.readdirSync(this.dir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || entry.name.endsWith(META)) continue;
      const key = path.relative(this.dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/');
      const size = await this.size(key);
      if (size !== null) found.push({ key, size });
    }
    return found;
  }

  async remove(prefix: string): Promise<void> {
    const target = this.file(prefix.replace(/\/+$/, ''));
    fs.rmSync(target, { recursive: true, force: true });
    fs.rmSync(target + META, { force: true });
  }
}
