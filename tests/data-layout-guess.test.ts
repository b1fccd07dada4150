// Two columns whose names are not a known layout: the one holding a few short values (labels) is the
// completion; when that does not tell them apart, the left one is the prompt. Expectations are worked out by
// hand from the rows; the layouts recognised by name stay as they were.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  decodeDatasetBytes,
  describeGuess,
  detectLayout,
  guessColumns,
  parseDataset,
  type Row,
} from '../src/data';
import { dataFile } from './helpers/shared';

const TICKETS = [
  'My card was charged twice for one order.',
  'The app crashes when I open settings.',
  'Where is my parcel?',
  'I cannot log in since the update.',
  'The refund never arrived.',
  'The box arrived damaged.',
];
const TEAMS = ['Billing', 'Tech', 'Shipping', 'Tech', 'Billing', 'Shipping'];

const rows = (columns: [string, string], left: string[], right: string[]): Row[] =>
  left.map((cell, i) => ({ [columns[0]]: cell, [columns[1]]: right[i] }));

describe('guessing the prompt and the completion of two columns', () => {
  it('takes the column of labels for the completion, on the right or on the left', () => {
    expect(guessColumns(['Message', 'Team'], rows(['Message', 'Team'], TICKETS, TEAMS))).toEqual({
      prompt: 'Message',
      completion: 'Team',
      basis: 'labels',
    });
    expect(guessColumns(['Team', 'Message'], rows(['Team', 'Message'], TEAMS, TICKETS))).toEqual({
      prompt: 'Message',
      completion: 'Team',
      basis: 'labels',
    });
  });

  it('reads the shared ticket file as tickets routed to departments', () => {
    const name = 'support-tickets.csv';
    const data = parseDataset(decodeDatasetBytes(new Uint8Array(fs.readFileSync(dataFile(name)))), name);
    expect(guessColumns(data.columns, data.rows)).toEqual({
      prompt: 'ticket',
      completion: 'department',
      basis: 'labels',
    });
  });

  it('goes by the order for two free-text columns, and says so', () => {
    const answers = TICKETS.map((t) => `Thanks for writing: "${t}" We are looking into it today.`);
    const guess = guessColumns(['Ticket', 'Reply'], rows(['Ticket', 'Reply'], TICKETS, answers));
    expect(guess).toEqual({ prompt: 'Ticket', completion: 'Reply', basis: 'free-text' });
    expect(describeGuess(guess!)).toBe(
      'Ticket is the prompt, Reply the answer (by the column order: neither column holds a few short values)',
    );
  });

  it('goes by the order when both columns hold labels (a tie)', () => {
    const sizes = ['S', 'M', 'L', 'S', 'M', 'L'];
    const colours = ['red', 'red', 'blue', 'blue', 'red', 'blue'];
    const guess = guessColumns(['Size', 'Colour'], rows(['Size', 'Colour'], sizes, colours));
    expect(guess).toEqual({ prompt: 'Size', completion: 'Colour', basis: 'both-labels' });
    expect(describeGuess(guess!)).toBe(
      'Size is the prompt, Colour the answer (by the column order: both columns hold a few short values)',
    );
  });

  it('does not take short values that seldom repeat, or long ones that do, for labels', () => {
    // Words and their translations: short, but every one different.
    const words = ['cat', 'dog', 'house', 'tree', 'water', 'bread'];
    const french = ['chat', 'chien', 'maison', 'arbre', 'eau', 'pain'];
    expect(guessColumns(['Word', 'French'], rows(['Word', 'French'], french, words))?.basis).toBe(
      'free-text',
    );
    // The same long sentence again and again is not a label.
    const boilerplate = TICKETS.map((_, i) =>
      i % 2
        ? 'We will get back to you within two working days.'
        : 'Thank you, your request has been forwarded.',
    );
    expect(guessColumns(['Request', 'Reply'], rows(['Request', 'Reply'], TICKETS, boilerplate))).toEqual({
      prompt: 'Request',
      completion: 'Reply',
      basis: 'free-text',
    });
  });

  it('ignores empty cells: a label column with gaps is still labels; an empty column is not', () => {
    const gaps = ['Billing', '', 'Shipping', 'Tech', ' ', 'Shipping', 'Tech', 'Billing'];
    const messages = [...TICKETS, 'Please delete my account.', 'How do I add a second user?'];
    expect(guessColumns(['Team', 'Message'], rows(['Team', 'Message'], gaps, messages))).toEqual({
      prompt: 'Message',
      completion: 'Team',
      basis: 'labels',
    });
    // A JSON file whose rows lack a field reads it as missing, not as a label.
    const sparse: Row[] = TICKETS.map((text) => ({ text_in: text }));
    expect(guessColumns(['text_in', 'label'], sparse)).toEqual({
      prompt: 'text_in',
      completion: 'label',
      basis: 'free-text',
    });
  });

  it('leaves layouts recognised by name, and files of one or three columns, to detection and the person', () => {
    for (const columns of [
      ['question', 'answer'],
      ['Prompt', 'Completion'],
      ['input', 'output'],
      ['instruction', 'output'],
      ['messages', 'id'],
    ]) {
      const byName = detectLayout(columns);
      expect(byName, columns.join(',')).not.toBeNull();
      expect(guessColumns(columns, rows(columns as [string, string], TICKETS, TEAMS))).toBeNull();
    }
    expect(detectLayout(['question', 'answer'])).toEqual({
      kind: 'template',
      promptTemplate: '{question}',
      completionTemplate: '{answer}',
    });
    expect(
      guessColumns(
        ['Message'],
        TICKETS.map((m) => ({ Message: m })),
      ),
    ).toBeNull();
    const three = TICKETS.map((m, i) => ({ Message: m, Team: TEAMS[i], Id: String(i) }));
    expect(guessColumns(['Message', 'Team', 'Id'], three)).toBeNull();
  });

  it('says why in words for labels', () => {
    expect(describeGuess({ prompt: 'Message', completion: 'Team', basis: 'labels' })).toBe(
      'Message is the prompt, Team the answer (Team holds a few short values, like labels)',
    );
  });
});
