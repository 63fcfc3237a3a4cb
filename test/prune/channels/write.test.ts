/**
 * src/cfg/write.ts: a shrunk cfg is the original text with only the edited values changed
 * (comments, blank lines, key order and spelling, line endings kept), a missing key added
 * after its section's header, and parseCfg of the result gives the new shapes.
 * (Here beside its only user; it mirrors src/cfg/write.ts.)
 */
import { parseCfg } from '../../../src/cfg/parser';
import { rewriteCfg } from '../../../src/cfg/write';

const ORIGINAL = [
  '# LeNet-ish, with comments',
  '[net]',
  'height=12',
  'width=12',
  'channels=1',
  '',
  '; first conv',
  '[convolutional]',
  'size=3',
  '  filters = 2 0   ',
  'activation=leaky',
  '',
  '[maxpool]',
  'size=2',
  'stride=2',
  '',
  '[convolutional]',
  'size=3',
  'activation=leaky',
  '',
  '[connected]',
  'output=30',
  'activation=relu',
  '',
  '[connected]',
  'output=10',
  '',
].join('\n');

describe('[reference] rewriteCfg', () => {
  test('[reference] changes only the values asked for, keeping every other character', () => {
    const text = rewriteCfg(ORIGINAL, new Map<number, Record<string, number>>([[0, { filters: 8 }], [3, { output: 12 }]]), 'x.cfg');
    const expected = ORIGINAL.replace('  filters = 2 0   ', '  filters = 8   ').replace('output=30', 'output=12');
    expect(text).toBe(expected);
    const spec = parseCfg(text, 'x.cfg');
    expect(spec.layers.map((l) => l.outC)).toEqual([8, 8, 1, 12, 10]);
    expect(spec.layers[3].inputs).toBe(1 * 3 * 3);
  });

  test('[reference] a section without the key gets it after its header', () => {
    const text = rewriteCfg(ORIGINAL, new Map([[2, { filters: 7 }]]), 'x.cfg');
    expect(text).toBe(ORIGINAL.replace('[convolutional]\nsize=3\nactivation=leaky', '[convolutional]\nfilters=7\nsize=3\nactivation=leaky'));
    expect(parseCfg(text, 'x.cfg').layers[2].outC).toBe(7);
  });

  test('[reference] CRLF files stay CRLF; a header on the last line without a newline', () => {
    const crlf = ORIGINAL.replace(/\n/g, '\r\n');
    const text = rewriteCfg(crlf, new Map([[2, { filters: 5 }], [0, { filters: 4 }]]), 'x.cfg');
    expect(text.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    expect(parseCfg(text, 'x.cfg').layers.map((l) => l.outC)).toEqual([4, 4, 5, 30, 10]);
    expect(rewriteCfg('[net]\ninputs=4\n[connected]', new Map([[0, { output: 3 }]]), 'y.cfg')).toBe('[net]\ninputs=4\n[connected]\noutput=3');
  });

  test('[reference] every occurrence of a repeated key changes; an unknown layer is an error', () => {
    const twice = '[net]\ninputs=4\n[connected]\noutput=5\noutput=6\n';
    expect(rewriteCfg(twice, new Map([[0, { output: 2 }]]), 'x.cfg')).toBe('[net]\ninputs=4\n[connected]\noutput=2\noutput=2\n');
    expect(() => rewriteCfg(twice, new Map([[1, { output: 2 }]]), 'x.cfg')).toThrow(/cannot edit layer 1: the cfg has 1 layers/);
    expect(rewriteCfg(ORIGINAL, new Map(), 'x.cfg')).toBe(ORIGINAL);
  });
});
