/** An export's files written into a folder on disk, each streamed to its file as it is made. */
import fs from 'node:fs';
import path from 'node:path';
import type { FolderSink } from '../formats/sink';
import { CliError } from './errors';

/** A new or empty folder (existing files are never overwritten); `written` lists each file and its size. */
export function diskFolder(dir: string): FolderSink & { written: { name: string; bytes: number }[] } {
  if (fs.existsSync(dir)) {
    if (!fs.statSync(dir).isDirectory())
      throw new CliError(`Cannot export into ${dir}: it is a file. Pass --out with a new folder name.`);
    if (fs.readdirSync(dir).length > 0)
      throw new CliError(
        `Cannot export into ${dir}: the folder already holds files. Pass --out with a new or empty folder.`,
      );
  } else {
    if (!fs.existsSync(path.dirname(path.resolve(dir))))
      throw new CliError(`Cannot export into ${dir}: its parent folder does not exist.`);
    fs.mkdirSync(dir);
  }
  const written: { name: string; bytes: number }[] = [];
  return {
    written,
    file(name) {
      const file = path.join(dir, name);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const fd = fs.openSync(file, 'wx');
      let bytes = 0;
      return {
        write(chunk) {
          fs.writeSync(fd, chunk);
          bytes += chunk.byteLength;
        },
        close() {
          fs.closeSync(fd);
          written.push({ name, bytes });
        },
      };
    },
  };
}
