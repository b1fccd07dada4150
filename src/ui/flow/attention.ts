/**
 * Getting a person's attention back during long runs: the tab title, and a notification when one ends in the
 * background.
 */

/** "42% · training — webtune" while a run goes, so a background tab shows how far it is. */
export function pageTitle(state: {
  training: number | null;
  evaluating: number | null;
  exporting: boolean;
}): string {
  if (state.training !== null) return `${state.training}% · training — webtune`;
  if (state.evaluating !== null) return `${state.evaluating}% · evaluating — webtune`;
  if (state.exporting) return 'Exporting… — webtune';
  return 'webtune';
}

const canNotify = () => typeof Notification !== 'undefined';

/**
 * Feed it whether a job is running; when it starts, permission to notify is asked (once, and only then); when
 * it ends while the tab is hidden, a notification says so with `body()` (null: nothing worth saying).
 */
export function notifyWhenDone(job: string, body: () => string | null): (running: boolean) => void {
  let was = false;
  return (running) => {
    if (running && !was && canNotify() && Notification.permission === 'default')
      void Notification.requestPermission().catch(() => undefined);
    if (
      !running &&
      was &&
      document.visibilityState === 'hidden' &&
      canNotify() &&
      Notification.permission === 'granted'
    ) {
      const text = body();
      if (text !== null)
        new Notification(`webtune: ${job.toLowerCase()} finished`, { body: text, tag: `webtune-${job}` });
    }
    was = running;
  };
}
