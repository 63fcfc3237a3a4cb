import * as fs from 'fs';
import * as path from 'path';
import { readCfg } from '../../src/cfg/parser';
import { DARKNET_HEADER, formatSummary } from '../../src/report/summary';
import { darknetRows } from '../../scripts/darknet-zoo';

// darknet's own layer table for our small cfgs in test/fixtures/darknet-tables, recorded
// with `darknet ops <cfg>` (pjreddie/darknet, run in that folder; stderr and stdout in
// <name>.darknet.txt). `summary` must print every row character for character (our
// parameter column sits to their right), and its BFLOPs total must be the "Floating
// Point Operations" darknet counts for the same cfg.
const DIR = path.join(__dirname, '..', 'fixtures', 'darknet-tables');
const NETS = ['image-layers', 'flat-layers', 'strided-layers'];

describe.each(NETS)('%s.cfg: summary = darknet\'s table', (name) => {
  const printed = fs.readFileSync(path.join(DIR, `${name}.darknet.txt`), 'utf8');
  const spec = readCfg(path.join(DIR, `${name}.cfg`));
  const lines = formatSummary(spec).split('\n');

  test('the header and every layer row, in order', () => {
    const theirs = darknetRows(printed);
    expect(theirs.length).toBe(spec.layers.length);
    expect(printed).toContain(`${DARKNET_HEADER}\n`);
    expect(lines[0].startsWith(DARKNET_HEADER)).toBe(true);
    theirs.forEach((row, i) => {
      const ours = lines[1 + i];
      expect(ours.slice(0, row.length)).toBe(row);
      expect(ours.slice(row.length)).toMatch(/^ +[\d,]+$/); // only our params column follows
    });
  });

  test("the total is darknet's operation count", () => {
    const ops = Number(/Floating Point Operations: (\d+)\n/.exec(printed)![1]);
    expect(spec.layers.reduce((s, l) => s + l.flops, 0)).toBe(ops);
    expect(lines).toContain(`total BFLOPs      ${(ops / 1e9).toFixed(3)}`);
  });
});

test('the fixtures cover every layer type added for darknet\'s cfg folder', () => {
  const types = new Set(NETS.flatMap((n) => readCfg(path.join(DIR, `${n}.cfg`)).layers.map((l) => l.type)));
  for (const t of ['crop', 'reorg', 'local', 'normalization', 'l2norm', 'logistic', 'upsample', 'deconvolutional', 'softmax', 'cost']) {
    expect(types).toContain(t);
  }
});
