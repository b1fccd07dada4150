/**
 * One owner of the model at a time (src/worker/lease.ts): a request that cannot have the model is refused
 * with a sentence naming what holds it; a yielding holder (the estimate) is asked to let go and waited for;
 * a queued request waits its turn; a paused run's adapter is protected from requests that would replace it.
 */
import { describe, expect, it } from 'vitest';
import { LeaseRefused, ModelLease, type LeaseKind } from '../src/worker/lease';

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('the model lease', () => {
  it('refuses a second holder, naming the first and what to do, and grants again once it is given back', async () => {
    const lease = new ModelLease();
    const release = await lease.take({ kind: 'chat' }, 'chat');
    expect(lease.holder).toBe('chat');
    await expect(lease.take({ kind: 'training' }, 'resume training')).rejects.toThrow(
      'The chat is still answering. Wait for it or press Stop, then resume training.',
    );
    release();
    release(); // a second release changes nothing
    expect(lease.holder).toBeNull();
    const next = await lease.take({ kind: 'training' }, 'train');
    expect(lease.holder).toBe('training');
    next();
  });

  it('says what each holder is doing', async () => {
    const kinds: LeaseKind[] = [
      'training',
      'chat',
      'evaluation',
      'export',
      'adapter',
      'model',
      'generation',
      'drafting',
    ];
    for (const kind of kinds) {
      const lease = new ModelLease();
      const release = await lease.take({ kind }, 'x');
      const refusal = lease.take({ kind: 'chat' }, 'chat');
      await expect(refusal).rejects.toBeInstanceOf(LeaseRefused);
      await expect(refusal).rejects.toThrow(/^[A-Z][^.]+\. [A-Z][^.]+, then chat\.$/);
      release();
    }
  });

  it('a holder can describe itself (a run that is pausing says so)', async () => {
    const lease = new ModelLease();
    const release = await lease.take(
      { kind: 'training', describe: () => ({ doing: 'Training is pausing', until: 'Wait for it' }) },
      'train',
    );
    await expect(lease.take({ kind: 'chat' }, 'chat')).rejects.toThrow(
      'Training is pausing. Wait for it, then chat.',
    );
    release();
  });

  it('asks a yielding holder to let go and gives the model to whoever asked first', async () => {
    const lease = new ModelLease();
    let asked = 0;
    const release = await lease.take({ kind: 'estimate', yieldTo: () => asked++ }, 'estimate');
    const chat = lease.take({ kind: 'chat' }, 'chat');
    const training = lease.take({ kind: 'training' }, 'train');
    await tick();
    expect(asked).toBe(2);
    expect(lease.holder).toBe('estimate'); // it lets go after its step, not before
    release();
    const chatRelease = await chat;
    expect(lease.holder).toBe('chat');
    await expect(training).rejects.toThrow(/^The chat is still answering/);
    chatRelease();
  });

  it('queues a waiting request behind the holder instead of refusing it', async () => {
    const lease = new ModelLease();
    const release = await lease.take({ kind: 'evaluation' }, 'evaluate');
    let granted = false;
    const waiting = lease.wait({ kind: 'estimate' }, 'estimate').then((r) => {
      granted = true;
      return r;
    });
    await tick();
    expect(granted).toBe(false);
    release();
    (await waiting)();
    expect(granted).toBe(true);
    // One no longer wanted fails when its turn comes.
    const again = await lease.take({ kind: 'chat' }, 'chat');
    let wanted = true;
    const dropped = lease.wait({ kind: 'estimate' }, 'estimate', {}, () => wanted);
    wanted = false;
    again();
    await expect(dropped).rejects.toThrow(/interrupted/);
    expect(lease.holder).toBeNull();
  });

  it('while a run is paused, refuses what would replace its adapter and allows the rest', async () => {
    let paused = true;
    const lease = new ModelLease(() => paused);
    await expect(
      lease.take({ kind: 'adapter' }, 'switch adapters', { replacesAdapter: true }),
    ).rejects.toThrow('A training run is paused. Resume it to its end or stop it, then switch adapters.');
    await expect(lease.wait({ kind: 'estimate' }, 'estimate', { replacesAdapter: true })).rejects.toThrow(
      /paused/,
    );
    const chat = await lease.take({ kind: 'chat' }, 'chat');
    chat();
    paused = false;
    (await lease.take({ kind: 'adapter' }, 'switch adapters', { replacesAdapter: true }))();
  });

  it('gives the model back however the work ends', async () => {
    const lease = new ModelLease();
    await expect(
      lease.with({ kind: 'export' }, 'export', async () => {
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    expect(lease.holder).toBeNull();
    await expect(lease.with({ kind: 'export' }, 'export', async () => 7)).resolves.toBe(7);
    expect(lease.holder).toBeNull();
  });
});
