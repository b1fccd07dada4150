/** With --json, stdout carries exactly one JSON object; everything else (progress, notes) goes to stderr. */
export interface Output {
  json: boolean;
  /** A progress or status line, always on stderr. */
  progress(line: string): void;
  /** The command's result: JSON on stdout with --json, otherwise the human text. */
  result(value: object, human: () => string): void;
  help(text: string): void;
}

/** Where the CLI writes: the process's streams, or (in tests) anything that takes text. */
export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

export const processIo: CliIo = { stdout: process.stdout, stderr: process.stderr };

export function createOutput(json: boolean, io: CliIo = processIo): Output {
  return {
    json,
    progress: (line) => io.stderr.write(line + '\n'),
    result: (value, human) => io.stdout.write((json ? JSON.stringify(value) : human()) + '\n'),
    help: (text) => io.stdout.write(text + '\n'),
  };
}
