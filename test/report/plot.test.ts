import { PNG } from 'pngjs';
import { PALETTE, formatTick, niceTicks, renderBarChart, renderLineChart, textMask, type Rgb } from '../../src/report/plot';

/** A decoded PNG with pixel look-ups. */
function decode(png: Buffer) {
  const img = PNG.sync.read(png);
  const d = img.data; // [height, width, 4] RGBA
  const at = (x: number, y: number): Rgb => {
    const i = (y * img.width + x) * 4;
    return [d[i], d[i + 1], d[i + 2]];
  };
  const is = (x: number, y: number, c: Rgb) => {
    const i = (y * img.width + x) * 4;
    return d[i] === c[0] && d[i + 1] === c[1] && d[i + 2] === c[2];
  };
  /** every pixel of colour `c`, as [x, y] */
  const find = (c: Rgb) => {
    const out: Array<[number, number]> = [];
    for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) if (is(x, y, c)) out.push([x, y]);
    return out;
  };
  return { width: img.width, height: img.height, at, is, find };
}

const WHITE: Rgb = [255, 255, 255];
const LEGEND_BORDER: Rgb = [170, 170, 170];

function bounds(pixels: Array<[number, number]>) {
  const xs = pixels.map((p) => p[0]);
  const ys = pixels.map((p) => p[1]);
  return { x0: Math.min(...xs), x1: Math.max(...xs), y0: Math.min(...ys), y1: Math.max(...ys) };
}

/** How many 8-connected pieces the pixels form. */
function pieces(pixels: Array<[number, number]>): number {
  const left = new Set(pixels.map(([x, y]) => `${x},${y}`));
  let n = 0;
  for (const start of pixels) {
    if (!left.delete(`${start[0]},${start[1]}`)) continue;
    n++;
    const stack = [start];
    while (stack.length) {
      const [x, y] = stack.pop()!;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) if (left.delete(`${x + dx},${y + dy}`)) stack.push([x + dx, y + dy]);
      }
    }
  }
  return n;
}

/** true when the set of values has no holes between its least and greatest */
function contiguous(values: number[]): boolean {
  const set = new Set(values);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return set.size === hi - lo + 1;
}

describe('niceTicks', () => {
  test('0..1 in steps of 0.2, without floating-point tails', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
  });

  test('0..9380 in steps of 2000', () => {
    expect(niceTicks(0, 9380)).toEqual([0, 2000, 4000, 6000, 8000]);
  });

  test('steps are 1, 2 or 5 x 10^k and ticks stay inside the range', () => {
    for (const [lo, hi, target] of [[0.013, 2.31, 6], [-3, 7, 5], [1e-4, 3e-4, 4], [17, 1234567, 8], [0.9, 0.95, 5]]) {
      const ticks = niceTicks(lo, hi, target);
      expect(ticks.length).toBeGreaterThanOrEqual(2);
      expect(ticks[0]).toBeGreaterThanOrEqual(lo);
      expect(ticks[ticks.length - 1]).toBeLessThanOrEqual(hi);
      const step = ticks[1] - ticks[0];
      const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
      expect([1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-6)).toBe(true);
    }
  });

  test('an empty or inverted range gives at most one tick', () => {
    expect(niceTicks(3, 3)).toEqual([3]);
    expect(niceTicks(5, 1)).toEqual([5]);
  });
});

describe('formatTick', () => {
  test.each([
    [0, 0.2, '0'],
    [0.4, 0.2, '0.4'],
    [1, 0.2, '1'],
    [0.05, 0.05, '0.05'],
    [800, 200, '800'],
    [1000, 500, '1k'],
    [2500, 500, '2.5k'],
    [8000, 2000, '8k'],
    [2e6, 1e6, '2M'],
    [0.001, 0.001, '0.001'],
    [0.0005, 0.0005, '5e-4'],
    [1.5e-4, 5e-5, '1.5e-4'],
    [-0.5, 0.5, '-0.5'],
  ])('%p on a %p-step axis is %p', (v, step, label) => {
    expect(formatTick(v, step)).toBe(label);
  });
});

describe('text', () => {
  const ink = (m: Uint8Array) => m.reduce((a, b) => a + b, 0);

  test('a string draws pixels; spaces draw none but take room', () => {
    const word = textMask('loss 0.25');
    expect(word.height).toBe(9); // 7 rows above the baseline, 2 for descenders
    expect(word.mask.length).toBe(word.width * word.height);
    expect(ink(word.mask)).toBeGreaterThan(40);
    const spaces = textMask('   ');
    expect(spaces.width).toBeGreaterThan(0);
    expect(ink(spaces.mask)).toBe(0);
    expect(ink(textMask('a b').mask)).toBe(ink(textMask('a').mask) + ink(textMask('b').mask));
  });

  test('every printable character but space has a glyph, and no two are alike', () => {
    const seen = new Map<string, string>();
    for (let code = 33; code <= 126; code++) {
      const ch = String.fromCharCode(code);
      const { width, mask } = textMask(ch);
      expect(ink(mask)).toBeGreaterThan(0);
      const key = `${width}:${mask.join('')}`;
      expect(seen.get(key)).toBeUndefined();
      seen.set(key, ch);
    }
  });

  test('scale 2 doubles each dimension and quadruples the ink', () => {
    const one = textMask('Title');
    const two = textMask('Title', 2);
    expect([two.width, two.height]).toEqual([2 * one.width, 2 * one.height]);
    expect(ink(two.mask)).toBe(4 * ink(one.mask));
  });

  test('characters outside printable ASCII draw as ?', () => {
    expect(textMask('é').mask).toEqual(textMask('?').mask);
  });
});

describe('renderLineChart', () => {
  const diagonal = (n: number): Array<[number, number]> => Array.from({ length: n }, (_, i) => [i / (n - 1), i / (n - 1)]);

  test('has the requested size, a white background, and each series in its colour', () => {
    const img = decode(
      renderLineChart({
        title: 'accuracy vs sparsity',
        xLabel: 'sparsity',
        yLabel: 'accuracy',
        width: 640,
        height: 400,
        series: [
          { name: 'rising', points: diagonal(20) },
          { name: 'flat', points: [[0, 0.5], [1, 0.5]] },
          { name: 'falling', points: [[0, 1], [1, 0]] },
        ],
      }),
    );
    expect([img.width, img.height]).toEqual([640, 400]);
    for (const [x, y] of [[0, 0], [639, 0], [0, 399], [639, 399]]) expect(img.at(x, y)).toEqual(WHITE);
    for (const color of PALETTE.slice(0, 3)) {
      // a 2 px line across a plot ~550 px wide, less what the other lines cover
      const n = img.find(color).length;
      expect(n).toBeGreaterThan(600);
      expect(n).toBeLessThan(4000);
    }
  });

  test('lines are continuous between points, across columns and down steep drops', () => {
    const color: Rgb = [200, 0, 0];
    const img = decode(
      renderLineChart({ title: '', xLabel: '', yLabel: '', series: [{ name: 'cliff', color, points: [[0, 1], [0.5, 1], [0.51, 0], [1, 0]] }] }),
    );
    const px = img.find(color);
    expect(pieces(px)).toBe(1);
    expect(contiguous(px.map((p) => p[0]))).toBe(true);
    expect(contiguous(px.map((p) => p[1]))).toBe(true);
    const b = bounds(px);
    expect(b.x1 - b.x0).toBeGreaterThan(600); // spans the default 800 px chart
    expect(b.y1 - b.y0).toBeGreaterThan(300);
  });

  test('a legend appears for two or more series, and not for one', () => {
    const one = decode(renderLineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: diagonal(5) }] }));
    expect(one.find(LEGEND_BORDER)).toHaveLength(0);
    const two = decode(
      renderLineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: diagonal(5) }, { name: 'b', points: [[0, 0.5], [1, 0.6]] }] }),
    );
    expect(two.find(LEGEND_BORDER).length).toBeGreaterThan(100);
  });

  test('the legend goes in a corner free of data', () => {
    // Accuracy-vs-sparsity curves leave only the bottom-left corner empty. The legend
    // hides what it covers, so compare with each series drawn alone: with y fixed and
    // the legend inside, both charts share one layout.
    const series = Array.from({ length: 10 }, (_, l) => ({
      name: `conv ${2 * l}`,
      color: PALETTE[l],
      points: Array.from({ length: 20 }, (_, i): [number, number] => [i / 20, 0.99 - 0.9 / (1 + Math.exp(-(i / 20 - 0.45 - 0.05 * l) * 12))]),
    }));
    const chart = { title: 't', xLabel: 'sparsity', yLabel: 'accuracy', yMin: 0, yMax: 1 };
    const box = bounds(decode(renderLineChart({ ...chart, series })).find(LEGEND_BORDER));
    expect(box.x1 - box.x0).toBeGreaterThan(40);
    expect(box.y1 - box.y0).toBeGreaterThan(10 * 12);
    for (const s of series) {
      const alone = decode(renderLineChart({ ...chart, series: [s] })).find(s.color);
      expect(alone.filter(([x, y]) => x >= box.x0 && x <= box.x1 && y >= box.y0 && y <= box.y1)).toHaveLength(0);
    }
  });

  test('the legend goes right of the plot when data fills every corner', () => {
    const waves = [0, 1.6].map((phase, i) => ({ name: `wave ${i}`, points: Array.from({ length: 300 }, (_, k): [number, number] => [k, Math.sin(k / 8 + phase)]) }));
    const img = decode(renderLineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: waves }));
    const legend = bounds(img.find(LEGEND_BORDER));
    for (const color of PALETTE.slice(0, 2)) {
      const data = bounds(img.find(color).filter(([x, y]) => x < legend.x0 || y > legend.y1)); // less the swatches
      expect(data.x1).toBeLessThan(legend.x0);
      expect(data.x1 - data.x0).toBeGreaterThan(500);
    }
  });

  test('a 100k-point series renders in one connected stroke', () => {
    let seed = 7;
    const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const points = Array.from({ length: 100_000 }, (_, i): [number, number] => [i + 1, 2.3 * Math.exp(-i / 20000) + 0.3 * rand()]);
    const png = renderLineChart({ title: 'loss', xLabel: 'batch', yLabel: 'loss', series: [{ name: 'loss', points }] });
    const px = decode(png).find(PALETTE[0]);
    expect(pieces(px)).toBe(1);
    expect(contiguous(px.map((p) => p[0]))).toBe(true);
  });

  test('log axes skip values <= 0; fixed ranges clip far-off and non-finite points', () => {
    const color: Rgb = [0, 150, 0];
    const log = decode(renderLineChart({ title: 'log', xLabel: 'x', yLabel: 'y', logY: true, series: [{ name: 'a', color, points: [[0, 1], [1, 0.1], [2, 0], [3, -1], [4, 0.001]] }] }));
    expect(log.find(color).length).toBeGreaterThan(100);
    // (far-off points are clipped before drawing; walking 1e300 pixels would never finish)
    const png = renderLineChart({ title: 'c', xLabel: 'x', yLabel: 'y', yMin: 0, yMax: 1, series: [{ name: 'a', color, points: [[0, 0.5], [1, 1e300], [2, NaN], [3, 0.5], [4, -1e12]] }] });
    expect(decode(png).find(color).length).toBeGreaterThan(50);
  });

  test('refuses sizes with no room for a plot', () => {
    expect(() => renderLineChart({ title: '', xLabel: '', yLabel: '', series: [], width: 50, height: 50 })).toThrow(RangeError);
  });
});

describe('renderBarChart', () => {
  /**
   * Heights of the bars in colour `c`, left to right, from their centre columns: the
   * unbroken run up from the baseline, or with `toTopmost` up to the column's highest
   * pixel of that colour (a full-height bar carries its value label inside, in white).
   */
  function barHeights(img: ReturnType<typeof decode>, c: Rgb, toTopmost = false): number[] {
    const px = img.find(c);
    const baseRow = Math.max(...px.map((p) => p[1]));
    const heights: number[] = [];
    for (let x = 0; x < img.width; ) {
      if (!img.is(x, baseRow, c)) {
        x++;
        continue;
      }
      let end = x;
      while (end + 1 < img.width && img.is(end + 1, baseRow, c)) end++;
      const mid = Math.floor((x + end) / 2);
      let top = baseRow;
      while (top > 0 && img.is(mid, top - 1, c)) top--;
      if (toTopmost) for (let y = top; y >= 0; y--) if (img.is(mid, y, c)) top = y;
      heights.push(baseRow - top + 1);
      x = end + 1;
    }
    return heights;
  }

  test('bar heights are proportional to their values', () => {
    const values = [0.1, 0.25, 0.5, 0.8, 1];
    const img = decode(
      renderBarChart({ title: 'sparsity', xLabel: 'layer', yLabel: 'sparsity', yMax: 1, groups: ['sparsity'], bars: values.map((v, i) => ({ label: `conv ${i}`, values: [v] })) }),
    );
    expect([img.width, img.height]).toEqual([800, 500]);
    expect(img.at(0, 0)).toEqual(WHITE);
    const heights = barHeights(img, PALETTE[0], true);
    expect(heights).toHaveLength(values.length);
    const full = heights[heights.length - 1]; // value 1 = yMax: the whole plot height
    expect(full).toBeGreaterThan(300);
    values.forEach((v, i) => expect(Math.abs(heights[i] - v * full)).toBeLessThanOrEqual(2));
    expect(img.find(LEGEND_BORDER)).toHaveLength(0); // one group: no legend
  });

  test('grouped bars take one palette colour per group, with a legend', () => {
    const bars = [
      { label: 'conv 0', values: [0.2, 0.6] },
      { label: 'conv 2', values: [0.3, 0.9] },
      { label: 'conn 4', values: [0.45, 0.75] },
    ];
    const img = decode(renderBarChart({ title: 't', xLabel: 'layer', yLabel: 'sparsity', yMax: 1, width: 600, height: 400, groups: ['round 1', 'round 2'], bars }));
    expect([img.width, img.height]).toEqual([600, 400]);
    const [first, second] = [barHeights(img, PALETTE[0]), barHeights(img, PALETTE[1])];
    expect(first).toHaveLength(3);
    expect(second).toHaveLength(3);
    const unit = second[1] / 0.9;
    bars.forEach((bar, i) => {
      expect(Math.abs(first[i] - bar.values[0] * unit)).toBeLessThanOrEqual(2);
      expect(Math.abs(second[i] - bar.values[1] * unit)).toBeLessThanOrEqual(2);
    });
    expect(img.find(LEGEND_BORDER).length).toBeGreaterThan(100);
  });

  test('refuses a bar whose values do not match the groups', () => {
    expect(() => renderBarChart({ title: '', xLabel: '', yLabel: '', groups: ['a', 'b'], bars: [{ label: 'x', values: [1] }] })).toThrow(/2 groups/);
  });
});
