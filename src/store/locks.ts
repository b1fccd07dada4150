/**
 * What one tab is doing, named with Web Locks so another tab of the page can tell: a training run in
 * progress (or paused) and a model file being downloaded. The locks live as long as the work and end
 * with the tab or worker that holds them. Where the platform has no Web Locks (Node), nothing is shared
 * between processes anyway, and the work simply goes ahead.
 */
type Locks = { request: LockManager['request']; query: LockManager['query'] };

const locks = (): Locks | undefined => (globalThis as { navigator?: { locks?: Locks } }).navigator?.locks;

const runLock = (runId: string) => `webtune-run-${runId}`;

export class RunOpenElsewhere extends Error {
  override name = 'RunOpenElsewhere';
  constructor() {
    super(
      'This training run is open in another tab of webtune. Finish or pause it there, or close that tab, then resume here.',
    );
  }
}

/**
 * Holds the run's lock until the returned release is called; throws RunOpenElsewhere when another tab
 * (or worker) holds it. Two tabs never train, or checkpoint, the same run.
 */
export async function holdRunLock(runId: string): Promise<() => void> {
  const manager = locks();
  if (!manager) return () => {};
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const granted = await new Promise<boolean>((answer) => {
    void manager.request(runLock(runId), { ifAvailable: true }, (lock) => {
      answer(lock !== null);
      return lock ? held : undefined;
    });
  });
  if (!granted) throw new RunOpenElsewhere();
  return release;
}

/** True when some tab holds the run's lock: it is being trained (or is paused) there. */
export async function runIsOpenElsewhere(runId: string): Promise<boolean> {
  const manager = locks();
  if (!manager) return false;
  const { held = [] } = await manager.query();
  return held.some((lock) => lock.name === runLock(runId));
}

/** Runs `work` while no other tab works on the same key (a file of a model being downloaded). */
export async function exclusively<T>(key: string, work: () => Promise<T>): Promise<T> {
  const manager = locks();
  if (!manager) return work();
  return manager.request(`webtune-file-${key}`, () => work()) as Promise<T>;
}
