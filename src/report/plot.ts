import { PNG } from 'pngjs';

/**
 * PNG charts with no dependency beyond pngjs: line charts (loss curves, accuracy vs
 * sparsity, prune rounds) and grouped bar charts (per-layer sparsity). Text comes from
 * a built-in 5x7 bitmap font with descenders, drawn at 1x, titles at 2x.
 *
 * Drawing order for both charts: grid, data, frame and ticks, labels, legend. The
 * legend goes in the corner of the plot area that covers no data, or to the right of
 * the plot when every corner would.
 */

export type Rgb = [number, number, number];

export interface Series {
  name: string;
  /** [x, y] pairs; non-finite values (and y <= 0 on a log axis) break the line */
  points: Array<[number, number]>;
  color?: Rgb;
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** pixels; default 800 x 500 */
  width?: number;
  height?: number;
  /** fixed y range; by default the data's range widened to the nearest ticks */
  yMin?: number;
  yMax?: number;
  logY?: boolean;
}

export interface BarChart {
  title: string;
  xLabel: string;
  yLabel: string;
  /** one cluster per entry, with `values[i]` the bar of `groups[i]` */
  bars: Array<{ label: string; values: number[] }>;
  /** one name per bar in a cluster, shown in the legend when there are two or more */
  groups: string[];
  width?: number;
  height?: number;
  yMax?: number;
}

/** Distinct defaults, in order: blue, orange, green, red, purple, brown, pink, grey, olive, cyan, indigo, ochre. */
export const PALETTE: readonly Rgb[] = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75],
  [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207], [57, 59, 121], [140, 109, 49],
];

const WHITE: Rgb = [255, 255, 255];
const TEXT: Rgb = [34, 34, 34];
const AXIS: Rgb = [68, 68, 68];
const GRID: Rgb = [232, 232, 232];
const LEGEND_BORDER: Rgb = [170, 170, 170];

// ---------------------------------------------------------------------------------
// Font

/**
 * Printable ASCII 32..126, one string per glyph, one base-32 digit per row from the
 * top (trailing blank rows left off). A row's 5 bits are its columns, 16 = leftmost.
 * Rows 0-6 hold capitals and digits (baseline under row 6), lowercase letters start at
 * row 2, and rows 7-8 hold descenders. Glyphs are drawn proportionally: blank columns
 * either side are trimmed and one blank column separates letters.
 */
const FONT_DATA = [
  '', '4444404', 'aa', 'aavavaa', '4fke5u4', 'op248j3', 'cik8lid', '448', //  ..'
  '2488842', '8422248', '04lel4', '044v44', '00000cc48', '000e', '00000cc', '11248gg', // (../
  'ehjlphe', '4c4444e', 'eh1248v', 'eh161he', '26aiv22', 'vgu11he', '68guhhe', 'v124888', // 0..7
  'ehhehhe', 'ehhf12c', '0cc0cc', '0cc0cc48', '248g842', '00v0v', '8421248', 'eh12404', // 8..?
  'ehnlnge', 'ehhvhhh', 'uhhuhhu', 'ehggghe', 'uhhhhhu', 'vgguggv', 'vgguggg', 'ehgnhhf', // @..G
  'hhhvhhh', 'e44444e', '72222ic', 'hikokih', 'ggggggv', 'hrllhhh', 'hhpljhh', 'ehhhhhe', // H..O
  'uhhuggg', 'ehhhlid', 'uhhukih', 'fgge11u', 'v444444', 'hhhhhhe', 'hhhhha4', 'hhhllla', // P..W
  'hha4ahh', 'hha4444', 'v1248gv', 'e88888e', 'gg84211', 'e22222e', '4ah', '0000000v', // X.._
  '84', '00e1fhf', 'gguhhhu', '00egghe', '11fhhhf', '00ehvge', '68s8888', '00fhhhf1e', // `..g
  'ggmphhh', '40c444e', '2062222ic', 'ggikoki', 'c44444e', '00qllll', '00mphhh', '00ehhhe', // h..o
  '00uhhhugg', '00fhhhf11', '00mpggg', '00fge1u', '88u8896', '00hhhjd', '00hhha4', '00hhlla', // p..w
  '00ha4ah', '00hhhhf1e', '00v248v', '3448443', '444444444', 'o44244o', '008l2', // x..~
];

/** Rows in a glyph cell: 7 above the baseline, 2 below. */
const FONT_HEIGHT = 9;
const SPACE_WIDTH = 3;

interface Glyph {
  rows: number[]; // [FONT_HEIGHT] 5-bit rows, 16 = leftmost column
  left: number; // first inked column
  width: number; // inked columns
}

const GLYPHS: Glyph[] = FONT_DATA.map((code) => {
  const rows = Array.from({ length: FONT_HEIGHT }, (_, r) => (r < code.length ? parseInt(code[r], 32) : 0));
  const all = rows.reduce((a, b) => a | b, 0);
  if (all === 0) return { rows, left: 0, width: SPACE_WIDTH };
  let left = 0;
  while (!(all & (16 >> left))) left++;
  let right = 4;
  while (!(all & (16 >> right))) right--;
  return { rows, left, width: right - left + 1 };
});

function glyph(ch: string): Glyph {
  const code = ch.charCodeAt(0);
  return GLYPHS[code >= 32 && code <= 126 ? code - 32 : '?'.charCodeAt(0) - 32];
}

/** Width in pixels of `text` drawn at `scale`. */
function textWidth(text: string, scale = 1): number {
  let w = 0;
  for (const ch of text) w += glyph(ch).width + 1;
  return Math.max(0, w - 1) * scale;
}

/**
 * `text` rasterised: a [height, width] mask of 0/1, height FONT_HEIGHT * scale.
 * @example
 *   const { width, height, mask } = textMask('loss', 2); // height 18
 */
export function textMask(text: string, scale = 1): { width: number; height: number; mask: Uint8Array } {
  const width = textWidth(text, scale);
  const height = FONT_HEIGHT * scale;
  const mask = new Uint8Array(width * height); // [height, width]
  let x0 = 0;
  for (const ch of text) {
    const g = glyph(ch);
    for (let r = 0; r < FONT_HEIGHT; r++) {
      for (let c = 0; c < g.width; c++) {
        if (!(g.rows[r] & (16 >> (g.left + c)))) continue;
        for (let dy = 0; dy < scale; dy++) {
          mask.fill(1, (r * scale + dy) * width + (x0 + c) * scale, (r * scale + dy) * width + (x0 + c + 1) * scale);
        }
      }
    }
    x0 += g.width + 1;
  }
  return { width, height, mask };
}

// ---------------------------------------------------------------------------------
// Ticks

/** The smallest of 1, 2, 5 x 10^k that is at least `raw`. */
function niceStep(raw: number): number {
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * mag >= raw * (1 - 1e-9)) return m * mag;
  return 10 * mag;
}

/** `k * step` without floating-point tails (0.6, not 0.6000000000000001). */
function tickAt(k: number, step: number): number {
  return Number((k * step).toPrecision(12));
}

/**
 * Round tick values (multiples of 1, 2 or 5 x 10^k) inside [min, max], about `target`
 * intervals apart.
 * @example
 *   niceTicks(0, 1);    // [0, 0.2, 0.4, 0.6, 0.8, 1]
 *   niceTicks(0, 9380); // [0, 2000, 4000, 6000, 8000]
 */
export function niceTicks(min: number, max: number, target = 5): number[] {
  if (!(max > min) || !Number.isFinite(max - min)) return Number.isFinite(min) ? [min] : [];
  return ticksBy(min, max, niceStep((max - min) / Math.max(1, target)));
}

/** The multiples of `step` in [min, max]. */
function ticksBy(min: number, max: number, step: number): number[] {
  const ticks: number[] = [];
  const last = Math.floor(max / step + 1e-9);
  for (let k = Math.ceil(min / step - 1e-9); k <= last; k++) ticks.push(tickAt(k, step));
  return ticks;
}

function stripZeros(s: string): string {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/**
 * A compact tick label for `v` on an axis whose ticks are `step` apart:
 * 0.25, 2.5k, 1.2M, 1e-3, 1.5e-4.
 */
export function formatTick(v: number, step: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  const decimals = (s: number) => Math.max(0, -Math.floor(Math.log10(s) + 1e-9));
  if (a >= 1e9 || a < 1e-3 || step < 1e-3) {
    const digits = Math.max(0, Math.floor(Math.log10(a) + 1e-9) - Math.floor(Math.log10(step) + 1e-9));
    const [mantissa, exp] = v.toExponential(Math.min(digits, 6)).split('e');
    return `${stripZeros(mantissa)}e${exp.replace('+', '')}`;
  }
  if (a >= 1e6 && step >= 1e5) return stripZeros((v / 1e6).toFixed(decimals(step / 1e6))) + 'M';
  if (a >= 1e3 && step >= 100) return stripZeros((v / 1e3).toFixed(decimals(step / 1e3))) + 'k';
  return stripZeros(v.toFixed(decimals(step)));
}

/** A value axis: its range, and the ticks with their labels. */
interface Axis {
  lo: number;
  hi: number;
  log: boolean;
  ticks: number[];
  labels: string[];
}

/** Where `v` falls on the axis, 0 at `lo` and 1 at `hi`. */
function axisFraction(a: Axis, v: number): number {
  if (a.log) return (Math.log10(v) - Math.log10(a.lo)) / (Math.log10(a.hi) - Math.log10(a.lo));
  return (v - a.lo) / (a.hi - a.lo);
}

/**
 * A linear axis over [min, max]. Each end not fixed by the caller moves out to the next
 * tick when that is at most `widen` x (max - min) away, so the data ends on a labelled
 * value: 1 for y axes, a little for x (batches 1..9380 start at 0, not 2000 short).
 */
function linearAxis(min: number, max: number, target: number, widen: number, fixedLo?: number, fixedHi?: number): Axis {
  let lo = fixedLo ?? min;
  let hi = fixedHi ?? max;
  if (!(hi > lo)) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    if (fixedLo === undefined) lo -= pad;
    if (fixedHi === undefined || !(fixedHi > lo)) hi = lo + 2 * pad;
  }
  const step = niceStep((hi - lo) / Math.max(1, target));
  const outLo = tickAt(Math.floor(lo / step + 1e-9), step);
  const outHi = tickAt(Math.ceil(hi / step - 1e-9), step);
  const span = hi - lo;
  if (fixedLo === undefined && lo - outLo <= widen * span) lo = outLo;
  if (fixedHi === undefined && outHi - hi <= widen * span) hi = outHi;
  const ticks = ticksBy(lo, hi, step);
  return { lo, hi, log: false, ticks, labels: ticks.map((t) => formatTick(t, step)) };
}

/** A log10 axis: whole decades unless fixed, ticks at powers of 10 (and 2, 5 when short). */
function logAxis(min: number, max: number, target: number, fixedLo?: number, fixedHi?: number): Axis {
  const lo = fixedLo !== undefined && fixedLo > 0 ? fixedLo : 10 ** Math.floor(Math.log10(min) + 1e-9);
  let hi = fixedHi !== undefined && fixedHi > 0 ? fixedHi : 10 ** Math.ceil(Math.log10(max) - 1e-9);
  if (!(hi > lo)) hi = lo * 10;
  const decades = Math.log10(hi) - Math.log10(lo);
  const every = Math.max(1, Math.ceil(decades / Math.max(1, target)));
  const ticks: number[] = [];
  for (let p = Math.floor(Math.log10(lo)) - 1; p <= Math.ceil(Math.log10(hi)); p++) {
    for (const m of decades <= 2 ? [1, 2, 5] : [1]) {
      const t = Number((m * 10 ** p).toPrecision(12));
      if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9) && (m > 1 || p % every === 0)) ticks.push(t);
    }
  }
  return { lo, hi, log: true, ticks, labels: ticks.map((t) => formatTick(t, 10 ** Math.floor(Math.log10(t) + 1e-9))) };
}

// ---------------------------------------------------------------------------------
// Canvas

interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** An RGBA image, white to start, with a mask of where data has been drawn. */
class Canvas {
  readonly data: Buffer; // [height, width, 4] RGBA
  /** 1 where a series or bar was drawn: the legend avoids these */
  readonly ink: Uint8Array; // [height, width]

  constructor(readonly width: number, readonly height: number) {
    this.data = Buffer.alloc(width * height * 4, 255);
    this.ink = new Uint8Array(width * height);
  }

  set(x: number, y: number, c: Rgb, clip?: Rect, ink = false): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    if (clip && (x < clip.x || y < clip.y || x >= clip.x + clip.w || y >= clip.y + clip.h)) return;
    const i = (y * this.width + x) * 4;
    this.data[i] = c[0];
    this.data[i + 1] = c[1];
    this.data[i + 2] = c[2];
    if (ink) this.ink[y * this.width + x] = 1;
  }

  fillRect(x: number, y: number, w: number, h: number, c: Rgb, ink = false): void {
    for (let yy = Math.max(0, y); yy < Math.min(this.height, y + h); yy++) {
      for (let xx = Math.max(0, x); xx < Math.min(this.width, x + w); xx++) this.set(xx, yy, c, undefined, ink);
    }
  }

  /** Outline of `r`, drawn just outside it. */
  frame(r: Rect, c: Rgb): void {
    this.fillRect(r.x - 1, r.y - 1, r.w + 2, 1, c);
    this.fillRect(r.x - 1, r.y + r.h, r.w + 2, 1, c);
    this.fillRect(r.x - 1, r.y - 1, 1, r.h + 2, c);
    this.fillRect(r.x + r.w, r.y - 1, 1, r.h + 2, c);
  }

  /** Count of data pixels in `r`. */
  inkIn(r: Rect): number {
    let n = 0;
    for (let y = Math.max(0, r.y); y < Math.min(this.height, r.y + r.h); y++) {
      for (let x = Math.max(0, r.x); x < Math.min(this.width, r.x + r.w); x++) n += this.ink[y * this.width + x];
    }
    return n;
  }

  /**
   * Bresenham from (x0, y0) to (x1, y1) with a `thick` x `thick` brush, clipped to
   * `clip` first so that far-off points cost nothing.
   */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, thick: number, clip: Rect): void {
    const seg = clipSegment(x0, y0, x1, y1, clip.x - 1, clip.y - 1, clip.x + clip.w, clip.y + clip.h);
    if (!seg) return;
    let [ax, ay, bx, by] = seg.map(Math.round);
    const dx = Math.abs(bx - ax);
    const dy = -Math.abs(by - ay);
    const sx = ax < bx ? 1 : -1;
    const sy = ay < by ? 1 : -1;
    let err = dx + dy;
    const lo = -Math.floor((thick - 1) / 2);
    for (;;) {
      for (let oy = lo; oy < lo + thick; oy++) for (let ox = lo; ox < lo + thick; ox++) this.set(ax + ox, ay + oy, c, clip, true);
      if (ax === bx && ay === by) break;
      const e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        ax += sx;
      }
      if (e2 <= dx) {
        err += dx;
        ay += sy;
      }
    }
  }

  /**
   * Text with its box's top-left at (x, y), or anchored by `align`. Vertical text reads
   * bottom to top; then `x` is its left edge and `y` its anchor along the text.
   */
  text(text: string, x: number, y: number, c: Rgb, o: { scale?: number; align?: 'left' | 'center' | 'right'; vertical?: boolean } = {}): void {
    const { width, height, mask } = textMask(text, o.scale ?? 1);
    const shift = o.align === 'center' ? Math.floor(width / 2) : o.align === 'right' ? width : 0;
    for (let ty = 0; ty < height; ty++) {
      for (let tx = 0; tx < width; tx++) {
        if (!mask[ty * width + tx]) continue;
        if (o.vertical) this.set(x + ty, y + shift - tx, c);
        else this.set(x - shift + tx, y + ty, c);
      }
    }
  }

  png(): Buffer {
    const png = new PNG({ width: this.width, height: this.height });
    this.data.copy(png.data);
    // NOTE: one fixed filter (Sub) and no RGBA -> RGB repacking. pngjs's adaptive filter
    // choice and repacking are plain JS loops that run ~100x slower under jest's module
    // sandbox (2 s a chart); files come out ~50 KB instead of ~35 KB.
    return PNG.sync.write(png, { colorType: 6, filterType: 1 });
  }
}

/** Liang-Barsky: the part of a segment inside [xmin, xmax] x [ymin, ymax], or null. */
function clipSegment(x0: number, y0: number, x1: number, y1: number, xmin: number, ymin: number, xmax: number, ymax: number): number[] | null {
  const dx = x1 - x0;
  const dy = y1 - y0;
  let t0 = 0;
  let t1 = 1;
  const p = [-dx, dx, -dy, dy];
  const q = [x0 - xmin, xmax - x0, y0 - ymin, ymax - y0];
  for (let i = 0; i < 4; i++) {
    if (p[i] === 0) {
      if (q[i] < 0) return null;
      continue;
    }
    const t = q[i] / p[i];
    if (p[i] < 0) {
      if (t > t1) return null;
      if (t > t0) t0 = t;
    } else {
      if (t < t0) return null;
      if (t < t1) t1 = t;
    }
  }
  return [x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy];
}

// ---------------------------------------------------------------------------------
// Layout shared by both charts

const PAD = 10;
const TICK = 4;
const TITLE_SCALE = 2;
const LEGEND_ROW = 13;
const SWATCH = 18;

interface LegendEntry {
  name: string;
  color: Rgb;
  kind: 'line' | 'box';
}

function legendSize(entries: LegendEntry[]): { w: number; h: number } {
  const nameW = Math.max(0, ...entries.map((e) => textWidth(e.name)));
  return { w: 6 + SWATCH + 6 + nameW + 7, h: 5 + entries.length * LEGEND_ROW };
}

/** Space the legend takes to the right of the plot when it cannot go inside. */
function legendGutter(entries: LegendEntry[]): number {
  return legendSize(entries).w + 2 * PAD;
}

function drawLegend(cv: Canvas, entries: LegendEntry[], x: number, y: number): void {
  const { w, h } = legendSize(entries);
  cv.fillRect(x, y, w, h, WHITE);
  cv.frame({ x, y, w, h }, LEGEND_BORDER);
  entries.forEach((e, i) => {
    const top = y + 4 + i * LEGEND_ROW;
    if (e.kind === 'line') cv.fillRect(x + 6, top + 3, SWATCH, 3, e.color);
    else cv.fillRect(x + 6 + SWATCH / 2 - 4, top, 9, 9, e.color);
    cv.text(e.name, x + 6 + SWATCH + 6, top, TEXT);
  });
}

/**
 * The legend in the corner of `plot` that covers no data; false if every corner does
 * (the caller then lays the chart out again with the legend outside).
 */
function placeLegendInside(cv: Canvas, plot: Rect, entries: LegendEntry[]): boolean {
  const { w, h } = legendSize(entries);
  const inset = 6;
  const left = plot.x + inset;
  const right = plot.x + plot.w - inset - w;
  const top = plot.y + inset;
  const bottom = plot.y + plot.h - inset - h;
  if (right < left || bottom < top) return false;
  const corners: Array<[number, number]> = [[right, top], [left, top], [right, bottom], [left, bottom]];
  for (const [x, y] of corners) {
    if (cv.inkIn({ x: x - 3, y: y - 3, w: w + 6, h: h + 6 }) === 0) {
      drawLegend(cv, entries, x, y);
      return true;
    }
  }
  return false;
}

/** The frame, y ticks and their labels, the title and both axis labels. */
function drawFurniture(cv: Canvas, plot: Rect, title: string, xLabel: string, yLabel: string, yAxis: Axis): void {
  cv.frame(plot, AXIS);
  yAxis.ticks.forEach((t, i) => {
    const y = plot.y + Math.round((1 - axisFraction(yAxis, t)) * (plot.h - 1));
    cv.fillRect(plot.x - 1 - TICK, y, TICK, 1, AXIS);
    cv.text(yAxis.labels[i], plot.x - TICK - 4, y - 3, TEXT, { align: 'right' });
  });
  // The title centred over the plot, shifted to stay inside the image; 1x if 2x cannot fit.
  const scale = textWidth(title, TITLE_SCALE) <= cv.width - 2 * PAD ? TITLE_SCALE : 1;
  const half = textWidth(title, scale) / 2;
  const titleX = Math.max(PAD + half, Math.min(plot.x + plot.w / 2, cv.width - PAD - half));
  cv.text(title, Math.round(titleX), PAD + (TITLE_SCALE - scale) * 4, TEXT, { scale, align: 'center' });
  cv.text(xLabel, plot.x + Math.round(plot.w / 2), cv.height - PAD - FONT_HEIGHT + 2, TEXT, { align: 'center' });
  cv.text(yLabel, PAD, plot.y + Math.round(plot.h / 2), TEXT, { align: 'center', vertical: true });
}

function horizontalGrid(cv: Canvas, plot: Rect, yAxis: Axis): void {
  for (const t of yAxis.ticks) {
    const y = plot.y + Math.round((1 - axisFraction(yAxis, t)) * (plot.h - 1));
    cv.fillRect(plot.x, y, plot.w, 1, GRID);
  }
}

/** How far (a fraction of the data's range) an x axis may reach out to a round end. */
const X_WIDEN = 0.03;

/** Top margin: the title and a gap. */
const TOP = PAD + FONT_HEIGHT * TITLE_SCALE + 10;

/** Left margin for y tick labels of the given axis. */
function leftMargin(yAxis: Axis): number {
  return PAD + FONT_HEIGHT + 8 + Math.max(0, ...yAxis.labels.map((l) => textWidth(l))) + 4 + TICK;
}

function checkSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 120 || height < 100) {
    throw new RangeError(`chart size ${width} x ${height}: need whole numbers, at least 120 x 100`);
  }
}

/** Runs `draw` with the legend inside, then outside if inside covered data. */
function withLegend(hasLegend: boolean, draw: (outside: boolean) => Canvas | null): Buffer {
  const canvas = draw(false) ?? (hasLegend ? draw(true) : null);
  if (!canvas) throw new Error('plot: legend placement failed'); // draw(true) always returns a canvas
  return canvas.png();
}

// ---------------------------------------------------------------------------------
// Line chart

/** Pixel-space points, one run per unbroken stretch of a series. */
function pixelRuns(points: Array<[number, number]>, x: (v: number) => number, y: (v: number) => number, logY: boolean): Array<Array<[number, number]>> {
  const runs: Array<Array<[number, number]>> = [];
  let run: Array<[number, number]> = [];
  for (const [px, py] of points) {
    if (!Number.isFinite(px) || !Number.isFinite(py) || (logY && py <= 0)) {
      if (run.length) runs.push(run);
      run = [];
      continue;
    }
    run.push([x(px), y(py)]);
  }
  if (run.length) runs.push(run);
  return runs;
}

/**
 * Per pixel column keep only the first, lowest, highest and last points, in their
 * order: drawn as a polyline this is the same picture as all the points, at a cost
 * bounded by the plot width.
 */
function decimate(run: Array<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let i = 0;
  while (i < run.length) {
    const col = Math.round(run[i][0]);
    let j = i;
    let lo = i;
    let hi = i;
    while (j + 1 < run.length && Math.round(run[j + 1][0]) === col) {
      j++;
      if (run[j][1] < run[lo][1]) lo = j;
      if (run[j][1] > run[hi][1]) hi = j;
    }
    for (const k of [...new Set([i, lo, hi, j])].sort((a, b) => a - b)) {
      const p: [number, number] = [Math.round(run[k][0]), Math.round(run[k][1])];
      const prev = out[out.length - 1];
      if (!prev || prev[0] !== p[0] || prev[1] !== p[1]) out.push(p);
    }
    i = j + 1;
  }
  return out;
}

/**
 * How noisy a decimated run is: the vertical pixels it travels within each column beyond
 * the column's net change, averaged over columns. 0 for any smooth line, however steep;
 * large for raw per-batch loss.
 */
function backtrack(pts: Array<[number, number]>): number {
  let excess = 0;
  let columns = 0;
  for (let i = 0; i < pts.length; ) {
    let j = i;
    let travel = 0;
    while (j + 1 < pts.length && pts[j + 1][0] === pts[i][0]) travel += Math.abs(pts[j + 1][1] - pts[j++][1]);
    excess += travel - Math.abs(pts[j][1] - pts[i][1]);
    columns++;
    i = j + 1;
  }
  return excess / columns;
}

/**
 * A line chart as PNG bytes. Series get PALETTE colours in order unless they bring
 * their own; a legend appears when there are two or more.
 * @example
 *   fs.writeFileSync('loss.png', renderLineChart({
 *     title: 'lenet: training loss', xLabel: 'batch', yLabel: 'loss',
 *     series: [{ name: 'loss', points: losses.map((l, i) => [i + 1, l]) }],
 *   }));
 */
export function renderLineChart(c: LineChart): Buffer {
  const width = c.width ?? 800;
  const height = c.height ?? 500;
  checkSize(width, height);
  const logY = c.logY ?? false;
  const series = c.series.map((s, i) => ({ name: s.name, color: s.color ?? PALETTE[i % PALETTE.length], points: s.points }));
  const usable = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0));
  let [xMin, xMax, yMin, yMax] = usable.length ? [Infinity, -Infinity, Infinity, -Infinity] : [0, 1, logY ? 1 : 0, logY ? 10 : 1];
  for (const [x, y] of usable) {
    xMin = Math.min(xMin, x);
    xMax = Math.max(xMax, x);
    yMin = Math.min(yMin, y);
    yMax = Math.max(yMax, y);
  }
  const entries: LegendEntry[] = series.map((s) => ({ name: s.name, color: s.color, kind: 'line' }));
  const hasLegend = series.length > 1;

  return withLegend(hasLegend, (outside) => {
    const bottom = TICK + 4 + FONT_HEIGHT + 8 + FONT_HEIGHT + PAD;
    const ph = height - TOP - bottom;
    const yTarget = Math.max(3, Math.round(ph / 60));
    const yAxis = logY ? logAxis(yMin, yMax, yTarget, c.yMin, c.yMax) : linearAxis(yMin, yMax, yTarget, 1, c.yMin, c.yMax);
    const left = leftMargin(yAxis);

    // x ticks: as many as fit with their labels apart, then the right margin for the last label
    const right0 = outside && hasLegend ? legendGutter(entries) : PAD + 10;
    let xAxis = linearAxis(xMin, xMax, 2, X_WIDEN);
    for (let target = Math.max(2, Math.round((width - left - right0) / 90)); target >= 1; target--) {
      xAxis = linearAxis(xMin, xMax, target, X_WIDEN);
      const pw = width - left - right0;
      const xs = xAxis.ticks.map((t) => axisFraction(xAxis, t) * pw);
      const ws = xAxis.labels.map((l) => textWidth(l));
      if (xs.every((x, i) => i === 0 || x - xs[i - 1] >= (ws[i] + ws[i - 1]) / 2 + 12)) break;
    }
    const lastLabel = xAxis.labels.length ? textWidth(xAxis.labels[xAxis.labels.length - 1]) : 0;
    const right = Math.max(right0, Math.ceil(lastLabel / 2) + 4);
    const plot: Rect = { x: left, y: TOP, w: width - left - right, h: ph };
    if (plot.w < 10 || plot.h < 10) throw new RangeError(`chart size ${width} x ${height} leaves no room for the plot`);

    const cv = new Canvas(width, height);
    const px = (v: number) => plot.x + axisFraction(xAxis, v) * (plot.w - 1);
    const py = (v: number) => plot.y + (1 - axisFraction(yAxis, v)) * (plot.h - 1);
    horizontalGrid(cv, plot, yAxis);
    for (const t of xAxis.ticks) cv.fillRect(Math.round(px(t)), plot.y, 1, plot.h, GRID);

    for (const s of series) {
      for (const run of pixelRuns(s.points, px, py, logY)) {
        const pts = decimate(run);
        if (pts.length === 1) {
          cv.line(pts[0][0] - 1, pts[0][1], pts[0][0] + 1, pts[0][1], s.color, 3, plot);
          continue;
        }
        // A noisy series (a band of many direction changes per column, like raw loss)
        // reads better 1 px wide; a smoothed one drawn over it stays 2 px.
        const thick = backtrack(pts) > 4 ? 1 : 2;
        for (let i = 1; i < pts.length; i++) cv.line(pts[i - 1][0], pts[i - 1][1], pts[i][0], pts[i][1], s.color, thick, plot);
      }
    }

    drawFurniture(cv, plot, c.title, c.xLabel, c.yLabel, yAxis);
    xAxis.ticks.forEach((t, i) => {
      const x = Math.round(px(t));
      cv.fillRect(x, plot.y + plot.h + 1, 1, TICK, AXIS);
      cv.text(xAxis.labels[i], x, plot.y + plot.h + 1 + TICK + 4, TEXT, { align: 'center' });
    });
    if (hasLegend) {
      if (outside) drawLegend(cv, entries, plot.x + plot.w + PAD + 2, plot.y);
      else if (!placeLegendInside(cv, plot, entries)) return null;
    }
    return cv;
  });
}

// ---------------------------------------------------------------------------------
// Bar chart

/** A bar's value printed above it: 3 significant digits. */
function formatValue(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return formatTick(v, 10 ** (Math.floor(Math.log10(a)) - 2));
  return stripZeros(v.toPrecision(3));
}

/**
 * Grouped bars as PNG bytes: one cluster per `bars` entry, one bar per group in
 * PALETTE order, bar heights proportional to value from a zero baseline. Category
 * labels turn vertical when they do not fit under their cluster; values are printed
 * above bars wide enough to hold them.
 * @example
 *   renderBarChart({
 *     title: 'sparsity per layer', xLabel: 'layer', yLabel: 'sparsity', yMax: 1,
 *     groups: ['round 1', 'round 2'],
 *     bars: [{ label: 'conv 0', values: [0.2, 0.5] }, { label: 'conn 4', values: [0.6, 0.9] }],
 *   });
 */
export function renderBarChart(c: BarChart): Buffer {
  const width = c.width ?? 800;
  const height = c.height ?? 500;
  checkSize(width, height);
  const k = c.groups.length;
  c.bars.forEach((b) => {
    if (b.values.length !== k) throw new RangeError(`bar '${b.label}' has ${b.values.length} values for ${k} groups`);
  });
  const values = c.bars.flatMap((b) => b.values).filter(Number.isFinite);
  const vMin = values.reduce((a, b) => Math.min(a, b), 0);
  const vMax = values.reduce((a, b) => Math.max(a, b), 0);
  const entries: LegendEntry[] = c.groups.map((g, i) => ({ name: g, color: PALETTE[i % PALETTE.length], kind: 'box' }));
  const hasLegend = k > 1;

  return withLegend(hasLegend, (outside) => {
    const right = outside && hasLegend ? legendGutter(entries) : PAD + 10;
    const axisFor = (ph: number) => linearAxis(vMin, vMax, Math.max(3, Math.round(ph / 60)), 1, vMin === 0 ? 0 : undefined, c.yMax);
    const n = Math.max(1, c.bars.length);
    const labelW = Math.max(0, ...c.bars.map((b) => textWidth(b.label)));
    // The plot width depends on the y labels, which depend on the plot height, which
    // depends on whether category labels turn vertical: settle it in two passes.
    let yAxis = axisFor(height - TOP - 50);
    const vertical = labelW > (width - leftMargin(yAxis) - right) / n - 6;
    const bottom = TICK + 4 + (vertical ? labelW : FONT_HEIGHT) + 8 + FONT_HEIGHT + PAD;
    const ph = height - TOP - bottom;
    yAxis = axisFor(ph);
    const plot: Rect = { x: leftMargin(yAxis), y: TOP, w: width - leftMargin(yAxis) - right, h: ph };
    if (plot.w < 10 || plot.h < 10) throw new RangeError(`chart size ${width} x ${height} leaves no room for the plot`);

    const cv = new Canvas(width, height);
    horizontalGrid(cv, plot, yAxis);
    // bar heights count whole pixels up from the baseline, so value/hi of the plot height
    const rowOf = (v: number) => plot.y + plot.h - Math.round(axisFraction(yAxis, v) * plot.h);
    const baseline = rowOf(0);
    const clusterW = plot.w / n;
    const barW = Math.max(1, Math.floor((clusterW * (k > 1 ? 0.8 : 0.65)) / Math.max(1, k)));
    c.bars.forEach((b, i) => {
      const x0 = Math.round(plot.x + i * clusterW + (clusterW - barW * k) / 2);
      b.values.forEach((v, g) => {
        if (!Number.isFinite(v)) return;
        const x = x0 + g * barW;
        const top = Math.max(plot.y, Math.min(plot.y + plot.h, rowOf(v)));
        const [y, h] = top <= baseline ? [top, baseline - top] : [baseline, top - baseline];
        cv.fillRect(x, y, barW - (barW > 3 ? 1 : 0), h, PALETTE[g % PALETTE.length], true);
        const label = formatValue(v);
        if (textWidth(label) <= barW + 2) {
          const above = v >= 0 ? y - FONT_HEIGHT - 1 : y + h + 2;
          const room = v >= 0 ? above >= plot.y : above + FONT_HEIGHT <= plot.y + plot.h;
          const inside = v >= 0 ? y + 2 : y + h - FONT_HEIGHT - 1;
          if (room) cv.text(label, x + Math.floor((barW - 1) / 2), above, TEXT, { align: 'center' });
          else if (h >= FONT_HEIGHT + 4) cv.text(label, x + Math.floor((barW - 1) / 2), inside, WHITE, { align: 'center' });
        }
      });
      const cx = Math.round(plot.x + (i + 0.5) * clusterW);
      cv.fillRect(cx, plot.y + plot.h + 1, 1, TICK, AXIS);
      if (vertical) cv.text(b.label, cx - 4, plot.y + plot.h + 1 + TICK + 4, TEXT, { vertical: true, align: 'right' });
      else cv.text(b.label, cx, plot.y + plot.h + 1 + TICK + 4, TEXT, { align: 'center' });
    });
    if (vMin < 0) cv.fillRect(plot.x, baseline, plot.w, 1, AXIS);

    drawFurniture(cv, plot, c.title, c.xLabel, c.yLabel, yAxis);
    if (hasLegend) {
      if (outside) drawLegend(cv, entries, plot.x + plot.w + PAD + 2, plot.y);
      else if (!placeLegendInside(cv, plot, entries)) return null;
    }
    return cv;
  });
}
