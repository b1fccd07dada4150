/**
 * A small XML scanner for the parts of a spreadsheet: elements, attributes and text, nothing else. Neither a
 * Web Worker nor Node has an XML parser, and workbooks need none of XML's dangerous parts: a document type
 * (where entity expansion and external files live) is refused, and only the five predefined entities and
 * character references are decoded.
 */
export class XmlError extends Error {
  override name = 'XmlError';
}

export interface XmlHandler {
  /** An element starts; `attributes` are keyed by local name (the namespace prefix dropped). */
  open?(name: string, attributes: Map<string, string>, selfClosing: boolean): void;
  /** An element ends (also called right after `open` for `<empty/>`). */
  close?(name: string): void;
  /** Text between tags, entities decoded; may come in several pieces. */
  text?(text: string): void;
}

/** The local name: `table:table-cell` → `table-cell`. */
const local = (name: string) => name.slice(name.indexOf(':') + 1);

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Text with `&lt;`, `&#65;`, `&#x41;` and the like decoded; an unknown entity is left as written. */
export function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (whole, entity: string) => {
    if (entity[0] !== '#') return Object.hasOwn(ENTITIES, entity) ? ENTITIES[entity] : whole;
    const code = entity[1] === 'x' ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10);
    return code <= 0x10ffff ? String.fromCodePoint(code) : whole;
  });
}

const ATTRIBUTE = /([^\s=/>]+)\s*=\s*("([^"]*)"|'([^']*)')/gy;

/** Calls the handler for every element and text of `xml`; `part` names the file in messages. */
export function scanXml(xml: string, handler: XmlHandler, part: string): void {
  const fail = (problem: string) => new XmlError(`${part}: ${problem}`);
  let at = 0;
  while (at < xml.length) {
    const lt = xml.indexOf('<', at);
    const textEnd = lt < 0 ? xml.length : lt;
    if (textEnd > at && handler.text) handler.text(decodeEntities(xml.slice(at, textEnd)));
    if (lt < 0) break;
    const next = xml[lt + 1];
    if (next === '?' || xml.startsWith('!--', lt + 1)) {
      const end = xml.indexOf(next === '?' ? '?>' : '-->', lt + 2);
      if (end < 0) throw fail('a comment or declaration is never closed');
      at = end + (next === '?' ? 2 : 3);
      continue;
    }
    if (xml.startsWith('![CDATA[', lt + 1)) {
      const end = xml.indexOf(']]>', lt + 9);
      if (end < 0) throw fail('a CDATA section is never closed');
      handler.text?.(xml.slice(lt + 9, end));
      at = end + 3;
      continue;
    }
    if (next === '!') throw fail('it declares a document type, which spreadsheet files never do');
    const gt = findTagEnd(xml, lt);
    if (gt < 0) throw fail('a tag is never closed');
    if (next === '/') {
      handler.close?.(local(xml.slice(lt + 2, gt).trim()));
      at = gt + 1;
      continue;
    }
    const selfClosing = xml[gt - 1] === '/';
    const body = xml.slice(lt + 1, selfClosing ? gt - 1 : gt);
    const nameEnd = body.search(/[\s]|$/);
    const name = local(body.slice(0, nameEnd));
    if (name === '') throw fail('a tag has no name');
    const attributes = new Map<string, string>();
    ATTRIBUTE.lastIndex = nameEnd;
    for (;;) {
      while (ATTRIBUTE.lastIndex < body.length && /\s/.test(body[ATTRIBUTE.lastIndex])) ATTRIBUTE.lastIndex++;
      if (ATTRIBUTE.lastIndex >= body.length) break;
      const match = ATTRIBUTE.exec(body);
      if (!match) throw fail(`the tag <${name}> has a malformed attribute`);
      attributes.set(local(match[1]), decodeEntities(match[3] ?? match[4]));
    }
    handler.open?.(name, attributes, selfClosing);
    if (selfClosing) handler.close?.(name);
    at = gt + 1;
  }
}

/** The `>` that ends the tag starting at `lt`, skipping any inside quoted attribute values. */
function findTagEnd(xml: string, lt: number): number {
  let quote = '';
  for (let i = lt + 1; i < xml.length; i++) {
    const c = xml[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '>') return i;
  }
  return -1;
}
