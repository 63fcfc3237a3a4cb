import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { DarknetError, excerpt } from '../../src/errors';
import type { LayerDefinition } from '../../src/engine/layer';
import { baseSpec } from '../../src/engine/layer';
import { SECTIONS } from '../../src/layers';
import { parseCfg, readCfg } from '../../src/cfg/parser';

const FILE = 't.cfg';
const NET = ['[net]', 'height=28', 'width=28', 'channels=1'];

/** A cfg from lines (line numbers in messages are 1-based indexes into `lines`). */
const cfg = (...lines: string[]) => lines.join('\n');

/** The DarknetError parseCfg throws, so a test can check its whole message. */
function errorOf(text: string): DarknetError {
  try {
    parseCfg(text, FILE);
  } catch (e) {
    if (e instanceof DarknetError) return e;
    throw e;
  }
  throw new Error('parseCfg did not throw');
}

/** Layer specs without `line`, for comparing cfgs laid out differently. */
const withoutLines = (text: string) => parseCfg(text, FILE).layers.map(({ line: _line, ...rest }) => rest);

describe('cfg syntax errors', () => {
  test('a line without = inside a section', () => {
    expect(errorOf(cfg(...NET, 'momentum')).message).toBe(`${FILE}:5: malformed line 'momentum' (expected key=value)`);
  });

  test('an empty key or an empty value', () => {
    expect(errorOf(cfg(...NET, '=3')).message).toMatch(/^t\.cfg:5: malformed line '=3'/);
    expect(errorOf(cfg(...NET, 'decay = ')).message).toMatch(/^t\.cfg:5: malformed line 'decay='/);
  });

  test('an option before any section', () => {
    expect(errorOf(cfg('# header comment', 'batch=1', ...NET)).message).toBe(
      `${FILE}:2: malformed line 'batch=1' (an option before any [section])`,
    );
  });

  test('an unterminated section header', () => {
    expect(errorOf(cfg(...NET, '[conv', 'filters=2')).message).toBe(`${FILE}:5: unterminated section header '[conv'`);
  });

  test('text after a section header', () => {
    expect(errorOf(cfg(...NET, '[conv]x')).message).toMatch(/^t\.cfg:5: malformed section header '\[conv\]x'/);
  });

  test('an unknown section lists the known ones', () => {
    const message = errorOf(cfg(...NET, '[connected]', 'output=10', '[yolo]', 'classes=80')).message;
    expect(message).toMatch(/^t\.cfg:7: unknown section \[yolo\]; known: /);
    for (const name of SECTIONS.keys()) expect(message).toContain(name);
    for (const alias of ['conv', 'conn', 'max', 'avg', 'soft', 'route', 'shortcut']) expect(message).toContain(alias);
  });

  test('the first section must be net or network', () => {
    expect(errorOf(cfg('', '[conv]', 'filters=2')).message).toBe(
      `${FILE}:2: first section must be [net] or [network], not [conv]`,
    );
  });

  test('net only as the first section', () => {
    expect(errorOf(cfg(...NET, '[connected]', 'output=2', '[network]')).message).toBe(
      `${FILE}:7: [network] may only be the first section`,
    );
  });

  test('a cfg with no sections', () => {
    expect(errorOf('').message).toBe(`${FILE}: no sections: a cfg starts with [net]`);
    expect(errorOf(cfg('# just', '; comments', '   ')).message).toMatch(/^t\.cfg: no sections/);
  });

  test('a cfg with no layers', () => {
    expect(errorOf(cfg('# x', ...NET)).message).toBe(`${FILE}:2: no layers after [net]`);
  });

  test('a value of the wrong type names its line', () => {
    expect(errorOf(cfg(...NET, '[conv]', 'size=3', 'filters=abc')).message).toBe(
      `${FILE}:7: 'filters=abc' is not an integer`,
    );
    expect(errorOf(cfg(...NET, 'momentum=fast', '[connected]', 'output=2')).message).toBe(
      `${FILE}:5: 'momentum=fast' is not a number`,
    );
  });

  test('missing and unreadable files are named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'darknet-ts-'));
    try {
      const missing = join(dir, 'nope.cfg');
      expect(() => readCfg(missing)).toThrow(DarknetError);
      expect(() => readCfg(missing)).toThrow(`${missing}: cannot read cfg file (no such file)`);
      expect(() => readCfg(dir)).toThrow(`${dir}: cannot read cfg file (it is a directory)`);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('net section errors', () => {
  const layer = ['[connected]', 'output=2'];

  test('subdivisions must divide batch', () => {
    expect(errorOf(cfg('[net]', 'batch=64', 'subdivisions=5', 'inputs=4', ...layer)).message).toBe(
      `${FILE}:3: subdivisions=5 does not divide batch=64`,
    );
  });

  test('batch and subdivisions must be at least 1', () => {
    expect(errorOf(cfg('[net]', 'inputs=4', 'batch=0', ...layer)).message).toBe(`${FILE}:3: batch=0 must be at least 1`);
    expect(errorOf(cfg('[net]', 'inputs=4', 'subdivisions=0', ...layer)).message).toBe(
      `${FILE}:3: subdivisions=0 must be at least 1`,
    );
  });

  test('an unknown policy lists the known ones', () => {
    expect(errorOf(cfg(...NET, 'policy=cosine', ...layer)).message).toBe(
      `${FILE}:5: unknown policy 'cosine'; known: constant, step, steps, exp, poly, random, sigmoid`,
    );
  });

  test('policy=steps needs steps and scales of the same length', () => {
    expect(errorOf(cfg(...NET, 'policy=steps', 'steps=100,200', ...layer)).message).toBe(
      `${FILE}:5: policy=steps needs both steps= and scales=`,
    );
    expect(errorOf(cfg(...NET, 'policy=steps', 'scales=.1', ...layer)).message).toMatch(/^t\.cfg:5: policy=steps needs/);
    expect(errorOf(cfg(...NET, 'policy=steps', 'steps=100,200', 'scales=.1', ...layer)).message).toBe(
      `${FILE}:7: steps= has 2 values but scales= has 1`,
    );
    expect(errorOf(cfg(...NET, 'policy=steps', 'steps=100,x', 'scales=.1,.1', ...layer)).message).toMatch(
      /^t\.cfg:6: 'steps=100,x' is not a list of integers/,
    );
  });

  test('no input size', () => {
    expect(errorOf(cfg('[net]', 'height=28', 'width=28', ...layer)).message).toBe(
      `${FILE}:1: no input size: give height, width and channels (or inputs)`,
    );
  });

  test('inputs that contradict height*width*channels', () => {
    expect(errorOf(cfg(...NET, 'inputs=100', ...layer)).message).toBe(
      `${FILE}:5: inputs=100 does not match height*width*channels = 784`,
    );
  });

  test('negative sizes', () => {
    expect(errorOf(cfg('[net]', 'height=-28', 'width=28', 'channels=1', ...layer)).message).toBe(
      `${FILE}:2: height=-28 must not be negative`,
    );
  });
});

describe('layer errors at cfg level', () => {
  test('a layer spec with no outputs is an error naming its line', () => {
    const table = SECTIONS as Map<string, LayerDefinition>;
    const empty: LayerDefinition = {
      type: 'dropout',
      names: ['empty-test'],
      parse: (o, ctx, common) => ({
        ...baseSpec('dropout', o, ctx, common, { outH: 0, outW: 0, outC: 0 }),
        params: [],
        flops: 0,
        describe: 'empty',
      }),
      create: () => {
        throw new Error('not used');
      },
    };
    table.set('empty-test', empty);
    try {
      expect(errorOf(cfg(...NET, '[empty-test]')).message).toMatch(/^t\.cfg:5: \[empty-test\] \(layer 0\) has no output/);
    } finally {
      table.delete('empty-test');
    }
  });

  test('a layer spec with a shape that is not a whole number, or a parameter array of none, is an error naming its line', () => {
    const table = SECTIONS as Map<string, LayerDefinition>;
    const odd = (outW: number, size: number): LayerDefinition => ({
      type: 'dropout',
      names: ['odd-test'],
      parse: (o, ctx, common) => ({
        ...baseSpec('dropout', o, ctx, common, { outH: 1, outW, outC: 1, outputs: 3 }),
        params: [{ name: 'weights', size }],
        flops: 0,
        describe: 'odd',
      }),
      create: () => {
        throw new Error('not used');
      },
    });
    try {
      table.set('odd-test', odd(2.5, 1));
      expect(errorOf(cfg(...NET, '[odd-test]')).message).toBe(
        `${FILE}:5: [odd-test] (layer 0) has out_w = 2.5: it must be a non-negative whole number`,
      );
      table.set('odd-test', odd(3, 0));
      expect(errorOf(cfg(...NET, '[odd-test]')).message).toBe(
        `${FILE}:5: [odd-test] (layer 0) has weights = 0: it must be a positive whole number`,
      );
    } finally {
      table.delete('odd-test');
    }
  });

  test('a route to a layer that does not exist', () => {
    // line 5 is the header, line 6 the key: the layer may point at either
    expect(errorOf(cfg(...NET, '[route]', 'layers=-3')).message).toMatch(/^t\.cfg:[56]: .*route/);
    expect(errorOf(cfg(...NET, '[connected]', 'output=2', '[route]', 'layers=1')).message).toMatch(/^t\.cfg:[78]: /);
  });

  test('route without layers=', () => {
    expect(errorOf(cfg(...NET, '[connected]', 'output=2', '[route]')).message).toMatch(/^t\.cfg:7: .*layers/);
  });

  test('a shortcut between incompatible shapes', () => {
    const text = cfg(
      ...NET,
      '[conv]', 'filters=4', 'size=3', 'pad=1', // 28 x 28 x 4, layer 0
      '[max]', 'size=3', 'stride=3', // 10 x 10 x 4: 28 is no multiple of 10
      '[shortcut]', 'from=-2',
    );
    expect(errorOf(text).message).toMatch(/^t\.cfg:1[23]: .*shortcut/);
  });

  test('shortcut without from=', () => {
    expect(errorOf(cfg(...NET, '[conv]', 'filters=1', '[shortcut]', 'activation=linear')).message).toMatch(
      /^t\.cfg:7: .*from/,
    );
  });

  test('a convolution whose output would be empty', () => {
    const text = cfg('[net]', 'height=5', 'width=5', 'channels=1', '[conv]', 'filters=2', 'size=7');
    expect(errorOf(text).message).toMatch(/^t\.cfg:[57]: /);
  });
});

describe('cfg syntax', () => {
  test('all whitespace inside a line is stripped; comments and blank lines are skipped', () => {
    const text = [
      '  [ net ]\r',
      '# a comment',
      'height = 2 8\t\r',
      '; another comment',
      '\twidth=28',
      '',
      'channels =1   ',
      '  [ conv ]  ',
      'fil ters = 1 2',
      'size=3',
    ].join('\n');
    const spec = parseCfg(text, FILE);
    expect(spec.net.h).toBe(28);
    expect(spec.layers).toHaveLength(1);
    expect(spec.layers[0]).toMatchObject({ type: 'convolutional', outC: 12, line: 8 });
    expect(spec.warnings).toEqual([]);
  });

  test('the first of a repeated key wins and the rest are reported', () => {
    const spec = parseCfg(cfg(...NET, '[conn]', 'output=3', 'output=4'), FILE);
    expect(spec.layers[0].outputs).toBe(3);
    expect(spec.warnings).toEqual([`${FILE}:7: unused field 'output' in [conn]`]);
  });

  test.each([
    ['conv', 'convolutional', ['filters=4', 'size=3', 'pad=1']],
    ['conn', 'connected', ['output=10']],
    ['max', 'maxpool', ['size=2', 'stride=2']],
    ['avg', 'avgpool', []],
    ['soft', 'softmax', []],
  ])('%s and %s make the same layer', (alias, name, keys) => {
    expect(withoutLines(cfg(...NET, `[${alias}]`, ...keys))).toEqual(withoutLines(cfg(...NET, `[${name}]`, ...keys)));
  });

  test('network is an alias of net', () => {
    const a = parseCfg(cfg(...NET, '[conn]', 'output=2'), FILE);
    const b = parseCfg(cfg('[network]', ...NET.slice(1), '[conn]', 'output=2'), FILE);
    expect(b.net).toEqual(a.net);
    expect(b.layers).toEqual(a.layers);
  });
});

describe('unused fields', () => {
  test('each unused key is named with its line and section', () => {
    const spec = parseCfg(
      cfg(...NET, 'batchsize=3', '[conv]', 'filters=2', 'size=3', 'colour=red', '[soft]', 'grups=2'),
      FILE,
    );
    expect(spec.warnings).toEqual([
      `${FILE}:5: unused field 'batchsize' in [net]`,
      `${FILE}:9: unused field 'colour' in [conv]`,
      `${FILE}:11: unused field 'grups' in [soft]`,
    ]);
  });

  test('the keys every layer may carry are read into its spec', () => {
    const spec = parseCfg(
      cfg(...NET, '[conn]', 'output=2', 'learning_rate=0.5', 'stopbackward=1', 'dontload=1', 'dontsave=1', 'dontloadscales=1'),
      FILE,
    );
    expect(spec.warnings).toEqual([]);
    expect(spec.layers[0]).toMatchObject({
      learningRateScale: 0.5, stopbackward: true, dontload: true, dontsave: true, dontloadscales: true,
    });
    const plain = parseCfg(cfg(...NET, '[conn]', 'output=2'), FILE).layers[0];
    expect(plain).toMatchObject({
      learningRateScale: 1, stopbackward: false, dontload: false, dontsave: false, dontloadscales: false,
    });
  });

  test('keys only some policies read are unused under the others', () => {
    const spec = parseCfg(cfg(...NET, 'policy=poly', 'step=100', 'power=2', '[conn]', 'output=2'), FILE);
    expect(spec.warnings).toEqual([`${FILE}:6: unused field 'step' in [net]`]);
  });
});

describe("darknet's defaults", () => {
  test('net defaults', () => {
    const { net } = parseCfg(cfg(...NET, '[conn]', 'output=2'), FILE);
    expect(net).toEqual({
      batch: 1, subdivisions: 1, learningRate: 0.001, momentum: 0.9, decay: 0.0001,
      h: 28, w: 28, c: 1, inputs: 784,
      policy: 'constant', step: 1, scale: 1, steps: [], scales: [], gamma: 1, power: 4, burnIn: 0, maxBatches: 0,
      maxCrop: 56, minCrop: 28, angle: 0, aspect: 1, saturation: 1, exposure: 1, hue: 0,
    });
  });

  test('batch is divided by subdivisions, and layers see that batch', () => {
    const spec = parseCfg(cfg('[net]', 'batch=64', 'subdivisions=4', 'inputs=10', '[conn]', 'output=2'), FILE);
    expect(spec.net).toMatchObject({ batch: 16, subdivisions: 4, inputs: 10, h: 0, w: 0, c: 0 });
    expect(spec.layers[0]).toMatchObject({ batch: 16, inputs: 10 });
  });

  test('policies read their own keys', () => {
    const net = (...keys: string[]) => parseCfg(cfg(...NET, ...keys, '[conn]', 'output=2'), FILE).net;
    expect(net('policy=step', 'step=1000', 'scale=.1')).toMatchObject({ policy: 'step', step: 1000, scale: 0.1 });
    expect(net('policy=steps', 'steps=100, 200', 'scales=.1,.5')).toMatchObject({ steps: [100, 200], scales: [0.1, 0.5] });
    expect(net('policy=exp', 'gamma=.99')).toMatchObject({ policy: 'exp', gamma: 0.99 });
    expect(net('policy=sigmoid', 'gamma=2', 'step=50')).toMatchObject({ policy: 'sigmoid', gamma: 2, step: 50 });
    expect(net('policy=poly', 'power=1', 'max_batches=9380', 'burn_in=10')).toMatchObject({
      policy: 'poly', power: 1, maxBatches: 9380, burnIn: 10,
    });
    expect(net('policy=random')).toMatchObject({ policy: 'random', power: 4 });
  });

  test('conv and connected activations default to logistic', () => {
    const [conv, conn] = parseCfg(cfg(...NET, '[conv]', 'filters=2', 'size=3', '[conn]', 'output=2'), FILE).layers;
    expect(conv).toMatchObject({ type: 'convolutional', activation: 'logistic' });
    expect(conn).toMatchObject({ type: 'connected', activation: 'logistic' });
  });

  test('conv pad=1 pads by size/2', () => {
    const [padded, unpadded] = parseCfg(
      cfg(...NET, '[conv]', 'filters=2', 'size=5', 'pad=1', '[conv]', 'filters=3', 'size=5'),
      FILE,
    ).layers;
    expect(padded).toMatchObject({ padding: 2, outH: 28, outW: 28, outC: 2 });
    expect(unpadded).toMatchObject({ padding: 0, h: 28, outH: 24, outW: 24, outC: 3 });
  });

  test('maxpool padding defaults to size - 1', () => {
    const [pool] = parseCfg(cfg(...NET, '[max]', 'size=3', 'stride=2'), FILE).layers;
    // (28 + 2 - 3) / 2 + 1 = 14
    expect(pool).toMatchObject({ padding: 2, outH: 14, outW: 14, outC: 1 });
  });

  test("each layer's input is the previous layer's output", () => {
    const layers = parseCfg(cfg(...NET, '[conv]', 'filters=6', 'size=5', '[max]', 'size=2', 'stride=2', '[conn]', 'output=7'), FILE).layers;
    expect(layers.map((l) => [l.index, l.h, l.w, l.c, l.inputs, l.outputs])).toEqual([
      [0, 28, 28, 1, 784, 24 * 24 * 6],
      [1, 24, 24, 6, 24 * 24 * 6, 12 * 12 * 6],
      [2, 12, 12, 6, 12 * 12 * 6, 7],
    ]);
  });
});

describe('the cfgs we ship', () => {
  test.each([
    ['cfg/lenet.cfg', ['convolutional', 'maxpool', 'convolutional', 'maxpool', 'connected', 'connected', 'softmax']],
    ['cfg/lenet-300-100.cfg', ['connected', 'connected', 'connected', 'softmax']],
  ])('%s parses without warnings', (path, types) => {
    const spec = readCfg(join(__dirname, '..', '..', path));
    expect(spec.warnings).toEqual([]);
    expect(spec.layers.map((l) => l.type)).toEqual(types);
    expect(spec.net).toMatchObject({ batch: 64, h: 28, w: 28, c: 1, policy: 'poly', power: 1, maxBatches: 9380 });
    expect(spec.layers[spec.layers.length - 1].outputs).toBe(10);
  });
});

describe('line endings and bytes that are not text', () => {
  const lines = [...NET, '[conv]', 'filters=2', 'size=3', '[conn]', 'output=4'];

  test('CR-only and CRLF files read as lines, with the same line numbers', () => {
    const lf = parseCfg(lines.join('\n'), FILE);
    for (const eol of ['\r', '\r\n']) {
      const spec = parseCfg(lines.join(eol), FILE);
      expect(spec.layers).toEqual(lf.layers);
      expect(spec.net).toEqual(lf.net);
    }
    expect(errorOf([...NET, 'momentum'].join('\r')).message).toBe(`${FILE}:5: malformed line 'momentum' (expected key=value)`);
  });

  test('an error in a long CR-only file quotes a short excerpt of one line, not the file', () => {
    const text = [...NET, ...Array.from({ length: 2000 }, (_, i) => `# comment ${i}`), 'filters 2'].join('\r');
    expect(text.length).toBeGreaterThan(18000);
    const message = errorOf(text).message;
    expect(message).toBe(`${FILE}:2005: malformed line 'filters2' (expected key=value)`);
  });

  test('control characters are refused, shown as escapes', () => {
    expect(errorOf(cfg(...NET, '[conn]', 'output=1\x1b[31mred')).message).toBe(
      `${FILE}:6: control character \\x1b in 'output=1\\x1b[31mred': is this a binary file?`,
    );
    expect(errorOf(cfg(...NET, '[co\0nv]')).message).toBe(`${FILE}:5: control character \\x00 in '[co\\x00nv]': is this a binary file?`);
    expect(errorOf(cfg('\x7fELF\x02\x01', ...NET)).message).toMatch(/^t\.cfg:1: control character \\x7f in '\\x7fELF\\x02\\x01'/);
  });

  test('a binary file is one short line', () => {
    const binary = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 256)).toString('utf8');
    const message = errorOf(binary).message;
    expect(message).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
    expect(message.length).toBeLessThan(200);
  });

  test('long lines and values are quoted as excerpts', () => {
    const long = 'x'.repeat(5000);
    expect(errorOf(cfg(...NET, long)).message).toBe(`${FILE}:5: malformed line '${'x'.repeat(59)}…' (expected key=value)`);
    expect(errorOf(cfg(...NET, `[${long}]`, 'a=1')).message).toMatch(/^t\.cfg:5: unknown section \[x{59}…\]; known: /);
    expect(errorOf(cfg(...NET, `policy=${long}`, '[conn]')).message).toMatch(/^t\.cfg:5: unknown policy 'x{59}…'; known: /);
    expect(errorOf(cfg(...NET, '[conn]', `output=${'9'.repeat(500)}`)).message).toBe(
      `${FILE}:6: 'output=${'9'.repeat(52)}…' is out of range: darknet reads an int (-2147483648 to 2147483647)`,
    );
  });
});

describe('numbers and sizes that cannot exist', () => {
  test('integers beyond C int are refused, in lists too', () => {
    expect(errorOf(cfg(...NET, '[conv]', 'filters=2147483648')).message).toBe(
      `${FILE}:6: 'filters=2147483648' is out of range: darknet reads an int (-2147483648 to 2147483647)`,
    );
    expect(errorOf(cfg(...NET, 'policy=steps', 'steps=1,99999999999', 'scales=1,1', '[conn]')).message).toMatch(
      /^t\.cfg:6: 'steps=1,99999999999' is out of range/,
    );
    expect(parseCfg(cfg(...NET, 'policy=steps', 'steps=1,2147483647', 'scales=1,1', '[conn]'), FILE).net.steps).toEqual([1, 2147483647]);
  });

  test('NaN and infinite numbers are refused', () => {
    expect(errorOf(cfg(...NET, 'momentum=NaN', '[conn]')).message).toBe(`${FILE}:5: 'momentum=NaN' is not a number`);
    expect(errorOf(cfg(...NET, 'decay=1e999', '[conn]')).message).toBe(`${FILE}:5: 'decay=1e999' is not a number`);
    expect(errorOf(cfg(...NET, '[conn]', 'output=NaN')).message).toBe(`${FILE}:6: 'output=NaN' is not an integer`);
  });

  test('width=100000 height=100000 is refused at [net]: its input cannot be one array', () => {
    expect(errorOf(cfg('[net]', 'width=100000', 'height=100000', 'channels=1', '[conv]', 'filters=100000')).message).toBe(
      `${FILE}:1: the input (batch 1 x 10000000000 values) would hold 10000000000 floats: one array holds at most 2147483647`,
    );
  });

  test('a layer whose arrays cannot exist is refused with its line', () => {
    expect(errorOf(cfg('[net]', 'width=1000', 'height=1000', 'channels=1', '[conv]', 'filters=100000')).message).toBe(
      `${FILE}:5: [conv] (layer 0) would need output of 100000000000 floats (batch 1, 1000000 inputs, 100000000000 outputs): one array holds at most 2147483647`,
    );
    expect(errorOf(cfg('[net]', 'inputs=10', '[conn]', 'output=2147483647')).message).toMatch(
      /^t\.cfg:3: \[conn\] \(layer 0\) would need weights of 21474836470 floats/,
    );
    // each array fits, but the batch of outputs does not
    expect(errorOf(cfg('[net]', 'batch=4096', 'inputs=1', '[conn]', 'output=1000000')).message).toMatch(
      /^t\.cfg:4: \[conn\] \(layer 0\) would need output of 4096000000 floats/,
    );
  });
});

describe('excerpt', () => {
  test('short text is unchanged; control characters become escapes; long text is cut with an ellipsis', () => {
    expect(excerpt('filters=2')).toBe('filters=2');
    expect(excerpt('a\r\nb\tc\x1b[0m\x00\x9b\u2028\u202e')).toBe('a\\r\\nb\\tc\\x1b[0m\\x00\\x9b\\u2028\\u202e');
    expect(excerpt('x'.repeat(60))).toBe('x'.repeat(60));
    expect(excerpt('x'.repeat(61))).toBe(`${'x'.repeat(59)}…`);
    expect(excerpt('abcdefghij', 5)).toBe('abcd…');
    // an escape is never cut in half
    expect(excerpt('abc\x1bdef', 6)).toBe('abc…');
    expect(excerpt('😀😀😀', 3)).toBe('😀…'); // nor a surrogate pair
  });

  test('only the start of a huge text is looked at', () => {
    const huge = 'y'.repeat(50_000_000);
    const start = Date.now();
    expect(excerpt(huge)).toHaveLength(60);
    expect(Date.now() - start).toBeLessThan(1000);
  });
});
