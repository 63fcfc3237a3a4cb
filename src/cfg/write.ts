import { DarknetError, excerpt } from '../errors';

/**
 * Rewrites cfg TEXT, changing only the values of given keys in given layer sections, so a
 * shrunk model's cfg reads like the original: comments, blank lines, key order, spelling
 * and line endings all stay. It reads lines as the parser does (parser.ts readSections):
 * whitespace inside a line is ignored, `#` and `;` start a comment line, `[...]` a section.
 */

/** New values per layer: layer index (0 = the first section after [net]) -> key -> value. */
export type CfgEdits = ReadonlyMap<number, Readonly<Record<string, string | number>>>;

/**
 * The cfg text with each edit applied: every `key=` line of that layer's section gets the
 * new value (the text before the value, and any spaces after it, kept as written); a
 * section without the key gets `key=value` on the line after its header. Throws when an
 * edit names a layer the text does not have.
 * @example
 *   rewriteCfg('[net]\nheight=28\n# two\n[conv]\nfilters=20\nsize=5\n', new Map([[0, { filters: 8 }]]), 'x.cfg');
 *   // '[net]\nheight=28\n# two\n[conv]\nfilters=8\nsize=5\n'
 */
export function rewriteCfg(text: string, edits: CfgEdits, file: string): string {
  // Lines and their separators, alternating, so the text is rebuilt exactly: [line, eol, line, eol, ..., line].
  const parts = text.split(/(\r\n|\r|\n)/);
  const eol = dominantEol(parts);
  // Section index per part: -1 before any section, 0 for [net], layer i at i + 1.
  let section = -1;
  const headers: number[] = []; // part index of each section's header line
  const done = new Set<string>(); // `${layer}:${key}` edits applied to an existing line
  for (let p = 0; p < parts.length; p += 2) {
    const s = parts[p].replace(/\s+/g, '');
    if (s === '' || s[0] === '#' || s[0] === ';') continue;
    if (s[0] === '[') {
      section++;
      headers.push(p);
      continue;
    }
    const layer = section - 1;
    const edit = edits.get(layer);
    const eq = s.indexOf('=');
    if (!edit || eq <= 0) continue;
    const key = s.slice(0, eq);
    if (!Object.prototype.hasOwnProperty.call(edit, key)) continue;
    parts[p] = replaceValue(parts[p], String(edit[key]));
    done.add(`${layer}:${key}`);
  }
  const layers = headers.length - 1;
  const insertions: Array<{ after: number; line: string }> = [];
  for (const [layer, edit] of edits) {
    if (!Number.isInteger(layer) || layer < 0 || layer >= layers) {
      throw new DarknetError(`${excerpt(file)}: cannot edit layer ${layer}: the cfg has ${layers} layers after [net]`);
    }
    for (const [key, value] of Object.entries(edit)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`rewriteCfg: '${key}' is not a cfg key`);
      if (!done.has(`${layer}:${key}`)) insertions.push({ after: headers[layer + 1], line: `${key}=${value}` });
    }
  }
  // From the last header up, so earlier part indexes stay valid; a section's new keys keep their order.
  const byHeader = new Map<number, string[]>();
  for (const i of insertions) byHeader.set(i.after, [...(byHeader.get(i.after) ?? []), i.line]);
  for (const [after, lines] of [...byHeader].sort((a, b) => b[0] - a[0])) {
    parts.splice(after + 1, 0, ...lines.flatMap((l) => [eol, l]));
  }
  return parts.join('');
}

/**
 * The cfg text without the given layers' sections: each goes from its `[header]` through its
 * last `key=value` line, with the blank lines after it; comment lines after its last key stay
 * (they usually describe the section that follows), as does everything else, byte for byte.
 * @example
 *   removeSections('[net]\nh=28\n\n[conv]\nfilters=2\n\n# the head\n[connected]\noutput=10\n', new Set([0]), 'x.cfg');
 *   // '[net]\nh=28\n\n# the head\n[connected]\noutput=10\n'
 */
export function removeSections(text: string, layers: ReadonlySet<number>, file: string): string {
  const parts = text.split(/(\r\n|\r|\n)/);
  const headers: number[] = [];
  const lastKey: number[] = []; // per section, the part index of its last key line (its header when none)
  for (let p = 0; p < parts.length; p += 2) {
    const s = parts[p].replace(/\s+/g, '');
    if (s === '' || s[0] === '#' || s[0] === ';') continue;
    if (s[0] === '[') {
      headers.push(p);
      lastKey.push(p);
    } else if (headers.length) {
      lastKey[lastKey.length - 1] = p;
    }
  }
  const count = headers.length - 1;
  for (const layer of layers) {
    if (!Number.isInteger(layer) || layer < 0 || layer >= count) {
      throw new DarknetError(`${excerpt(file)}: cannot remove layer ${layer}: the cfg has ${count} layers after [net]`);
    }
  }
  const drop = new Set<number>();
  for (const layer of layers) {
    let p = headers[layer + 1];
    for (; p <= lastKey[layer + 1]; p += 2) drop.add(p).add(p + 1);
    for (; p + 1 < parts.length && parts[p].trim() === ''; p += 2) drop.add(p).add(p + 1);
  }
  return parts.filter((_, p) => !drop.has(p)).join('');
}

/** The raw value of `key` in a layer's section (whitespace removed; the first, as the parser reads it), or undefined. */
export function cfgValue(text: string, layer: number, key: string): string | undefined {
  let section = -1;
  let value: string | undefined;
  for (const line of text.split(/\r\n|\r|\n/)) {
    const s = line.replace(/\s+/g, '');
    if (s === '' || s[0] === '#' || s[0] === ';') continue;
    if (s[0] === '[') {
      section++;
      if (section > layer + 1) break;
      continue;
    }
    const eq = s.indexOf('=');
    if (section === layer + 1 && eq > 0 && s.slice(0, eq) === key && value === undefined) value = s.slice(eq + 1);
  }
  return value;
}

/** The raw line with its value replaced: `  filters = 20 ` -> `  filters = 8 `. */
function replaceValue(raw: string, value: string): string {
  const eq = raw.indexOf('=');
  const before = raw.slice(0, eq + 1);
  const rest = raw.slice(eq + 1);
  const lead = /^\s*/.exec(rest)![0];
  const trail = /\s*$/.exec(rest.slice(lead.length))![0];
  return `${before}${lead}${value}${trail}`;
}

/** The file's own line ending (the most common separator), `\n` for a one-line text. */
function dominantEol(parts: string[]): string {
  const counts = new Map<string, number>();
  for (let p = 1; p < parts.length; p += 2) counts.set(parts[p], (counts.get(parts[p]) ?? 0) + 1);
  let best = '\n';
  let most = 0;
  for (const [e, n] of counts) {
    if (n > most) {
      best = e;
      most = n;
    }
  }
  return best;
}
