import { join } from 'path';
import { readCfg } from '../../src/cfg/parser';
import { DARKNET_HEADER, formatSummary, groupThousands, type SummaryColumn } from '../../src/report/summary';

const FIXTURE = join(__dirname, '..', 'fixtures', 'darknet-lenet', 'lenet.cfg');

/**
 * What darknet prints for the fixture (parse_network_cfg: `%5d ` + each layer's line),
 * worked out by hand from darknet's formulas:
 * conv out = (28 - 5)/1 + 1 = 24, BFLOPs = 2*20*(5*5*3)*24*24 / 1e9 = 0.001728;
 * maxpool out = (24 + 1 - 2)/2 + 1 = 12 (padding = size - 1, C division);
 * conv 2 BFLOPs = 2*50*(5*5*20)*8*8 / 1e9 = 0.0032; connected inputs = 4*4*50 = 800.
 */
const DARKNET_ROWS = [
  '    0 conv     20  5 x 5 / 1    28 x  28 x   3   ->    24 x  24 x  20  0.002 BFLOPs',
  '    1 max          2 x 2 / 2    24 x  24 x  20   ->    12 x  12 x  20',
  '    2 conv     50  5 x 5 / 1    12 x  12 x  20   ->     8 x   8 x  50  0.003 BFLOPs',
  '    3 max          2 x 2 / 2     8 x   8 x  50   ->     4 x   4 x  50',
  '    4 connected                             800  ->   500',
  '    5 connected                             500  ->    10',
  '    6 softmax                                          10',
];
/** biases + weights: 20 + 20*75, 50 + 50*500, 500 + 500*800, 10 + 10*500 */
const PARAMS = ['1,520', '0', '25,050', '0', '400,500', '5,010', '0'];

describe('formatSummary', () => {
  const text = formatSummary(readCfg(FIXTURE));
  const lines = text.split('\n');

  test("darknet's header and rows come first on each line, parameters after them", () => {
    expect(lines[0].startsWith(DARKNET_HEADER)).toBe(true);
    expect(lines[0]).toMatch(/ params$/);
    DARKNET_ROWS.forEach((row, i) => {
      const line = lines[i + 1];
      expect(line.startsWith(row)).toBe(true);
      // only spaces between darknet's text and the parameter count
      expect(line.slice(row.length)).toMatch(new RegExp(`^ +${PARAMS[i]}$`));
    });
  });

  test('the parameter column is right-aligned under its header', () => {
    const end = lines[0].length;
    for (let i = 1; i <= DARKNET_ROWS.length; i++) expect(lines[i].length).toBe(end);
  });

  test('totals: 432,080 parameters (the floats in darknet\'s .weights) and BFLOPs', () => {
    // 0.001728 + 0.0032 + 2*800*500/1e9 + 2*500*10/1e9 = 0.005738
    expect(lines.slice(DARKNET_ROWS.length + 1)).toEqual([
      '',
      'total parameters  432,080',
      'total BFLOPs      0.006',
      '',
    ]);
  });

  test('the cfgs we ship: 431,080 and 266,610 parameters (Han et al.\'s 431K and 267K)', () => {
    expect(formatSummary(readCfg(join(__dirname, '..', '..', 'cfg', 'lenet.cfg')))).toContain('total parameters  431,080\n');
    expect(formatSummary(readCfg(join(__dirname, '..', '..', 'cfg', 'lenet-300-100.cfg')))).toContain('total parameters  266,610\n');
  });

  test('extra columns go after the parameters, with their own totals', () => {
    const spec = readCfg(FIXTURE);
    const outputs: SummaryColumn = {
      header: 'outputs',
      cell: (l) => String(l.outputs),
      totals: (s) => [['last layer outputs', String(s.layers[s.layers.length - 1].outputs)]],
    };
    const withExtra = formatSummary(spec, [outputs]).split('\n');
    expect(withExtra[0]).toMatch(/ params  outputs$/);
    expect(withExtra[1]).toMatch(/ 1,520    11520$/);
    expect(withExtra).toContain('last layer outputs  10');
    expect(withExtra).toContain('total parameters    432,080');
  });
});

test('groupThousands', () => {
  expect([0, 999, 1000, 432080, 1234567, -5000].map(groupThousands)).toEqual(['0', '999', '1,000', '432,080', '1,234,567', '-5,000']);
});
