/**
 * The page's guided flow: Model → Data → Train → Evaluate → Compare → Export. Which steps are done, which
 * the person can open, and where they are, from what the page knows. Pure, so the rules are tested in Node.
 *
 * Data is open from the start (a file can be dropped while the model downloads). Train opens once there is
 * a model and data. Evaluate, Compare and Export open once there is an adapter to look at — trained here or
 * imported — and stay open after that; a paused run's adapter opens Evaluate and Compare (they use it) but
 * not Export (it is not saved yet). The current step is the first open step not yet done.
 */
export const STEPS = [
  { id: 'model', name: 'Model', section: 'model-heading' },
  { id: 'data', name: 'Data', section: 'data-heading' },
  { id: 'train', name: 'Train', section: 'train-heading' },
  { id: 'evaluate', name: 'Evaluate', section: 'evaluate-heading' },
  { id: 'compare', name: 'Compare', section: 'chat-heading' },
  { id: 'export', name: 'Export', section: 'library-heading' },
] as const;

export type StepId = (typeof STEPS)[number]['id'];
export type StepStatus = 'done' | 'current' | 'open' | 'locked';

export interface FlowFacts {
  modelLoaded: boolean;
  /** Prepared with at least one training example. */
  dataReady: boolean;
  training: boolean;
  /** A run finished here in this visit, or the library holds an adapter. */
  hasAdapter: boolean;
  /**
   * An adapter on the model that the library does not hold: a paused run's (or a stopped one's). Evaluate
   * and Compare use it, so they open; Export waits for a saved one.
   */
  adapterOnModel: boolean;
  evaluated: boolean;
  compared: boolean;
  exported: boolean;
}

export interface StepState {
  id: StepId;
  name: string;
  section: string;
  status: StepStatus;
  /** Why a locked step is locked, in words. */
  waitingFor: string | null;
}

export function flowSteps(f: FlowFacts): StepState[] {
  const done: Record<StepId, boolean> = {
    model: f.modelLoaded,
    data: f.dataReady,
    train: f.hasAdapter && !f.training,
    evaluate: f.evaluated,
    compare: f.compared,
    export: f.exported,
  };
  const adapterToTry = f.hasAdapter || f.adapterOnModel;
  const waiting: Record<StepId, string | null> = {
    model: null,
    data: null,
    train: !f.modelLoaded ? 'a model' : !f.dataReady ? 'your examples' : null,
    evaluate: !adapterToTry
      ? 'a trained adapter'
      : !f.modelLoaded
        ? 'a model'
        : !f.dataReady
          ? 'your examples'
          : null,
    compare: !adapterToTry ? 'a trained adapter' : !f.modelLoaded ? 'a model' : null,
    export: !f.hasAdapter ? 'a trained adapter' : null,
  };
  let current: StepId | null = null;
  for (const step of STEPS) {
    if (current === null && !done[step.id] && waiting[step.id] === null) current = step.id;
  }
  // While training runs, that is where the person is.
  if (f.training) current = 'train';
  return STEPS.map((step) => ({
    ...step,
    status:
      step.id === current
        ? 'current'
        : done[step.id]
          ? 'done'
          : waiting[step.id] !== null
            ? 'locked'
            : 'open',
    waitingFor: waiting[step.id],
  }));
}
