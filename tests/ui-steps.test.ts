// The guided flow's rules: data can come first, Train waits for a model and data, the steps after it for an
// adapter, and the current step is the first open one not yet done (Train while a run is going).
import { describe, expect, it } from 'vitest';
import { flowSteps, type FlowFacts } from '../src/ui/flow/steps';

const NOTHING: FlowFacts = {
  modelLoaded: false,
  dataReady: false,
  training: false,
  hasAdapter: false,
  adapterOnModel: false,
  evaluated: false,
  compared: false,
  exported: false,
};
const statuses = (facts: Partial<FlowFacts>) =>
  Object.fromEntries(flowSteps({ ...NOTHING, ...facts }).map((s) => [s.id, s.status]));

describe('the step bar', () => {
  it('a fresh page: the model is where one starts, data is open, the rest waits and says for what', () => {
    expect(statuses({})).toEqual({
      model: 'current',
      data: 'open',
      train: 'locked',
      evaluate: 'locked',
      compare: 'locked',
      export: 'locked',
    });
    const train = flowSteps(NOTHING).find((s) => s.id === 'train')!;
    expect(train.waitingFor).toBe('a model');
    expect(flowSteps({ ...NOTHING, modelLoaded: true }).find((s) => s.id === 'train')!.waitingFor).toBe(
      'your examples',
    );
  });

  it('data first, while the model downloads: data is done and the model is still where the person is', () => {
    expect(statuses({ dataReady: true })).toMatchObject({ model: 'current', data: 'done', train: 'locked' });
  });

  it('model and data: Train is current; during a run it stays current; after it, Evaluate', () => {
    expect(statuses({ modelLoaded: true, dataReady: true })).toMatchObject({
      model: 'done',
      data: 'done',
      train: 'current',
      evaluate: 'locked',
    });
    expect(statuses({ modelLoaded: true, dataReady: true, training: true, hasAdapter: true })).toMatchObject({
      train: 'current',
      evaluate: 'open',
    });
    expect(statuses({ modelLoaded: true, dataReady: true, hasAdapter: true })).toEqual({
      model: 'done',
      data: 'done',
      train: 'done',
      evaluate: 'current',
      compare: 'open',
      export: 'open',
    });
  });

  it('a paused run: Train stays current, its adapter opens Evaluate and Compare, Export waits for a saved one', () => {
    expect(statuses({ modelLoaded: true, dataReady: true, adapterOnModel: true })).toEqual({
      model: 'done',
      data: 'done',
      train: 'current',
      evaluate: 'open',
      compare: 'open',
      export: 'locked',
    });
  });

  it('done steps stay reachable; the current step moves on to the first one left', () => {
    expect(statuses({ modelLoaded: true, dataReady: true, hasAdapter: true, evaluated: true })).toMatchObject(
      { evaluate: 'done', compare: 'current', export: 'open' },
    );
    expect(
      statuses({
        modelLoaded: true,
        dataReady: true,
        hasAdapter: true,
        evaluated: true,
        compared: true,
        exported: true,
      }),
    ).toEqual({
      model: 'done',
      data: 'done',
      train: 'done',
      evaluate: 'done',
      compare: 'done',
      export: 'done',
    });
  });

  it('an imported adapter counts as trained and opens Compare and Export; Evaluate still needs the data', () => {
    expect(statuses({ modelLoaded: true, hasAdapter: true })).toMatchObject({
      data: 'current',
      train: 'done',
      evaluate: 'locked',
      compare: 'open',
      export: 'open',
    });
  });
});
