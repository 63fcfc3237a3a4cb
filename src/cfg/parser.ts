import { readFileSync } from 'fs';
import type { NetConfig, NetworkSpec, Policy } from './config';
import { CONTROL_CHARACTER, excerpt, fileError } from '../errors';
import type { CommonSpec, LayerSpec, ParseContext } from '../engine/layer';
import { SECTIONS } from '../layers';
import { layerArrays, MAX_ARRAY_FLOATS } from './memory';
import { OptionLine, Options } from './options';

/**
 * cfg text -> NetworkSpec: darknet's read_cfg, parse_net_options and parse_network_cfg.
 * Only shapes and settings are built here; no kernels, no buffers.
 */

/** One `[section]` and its `key=value` lines, as read_cfg collects them. */
interface Section {
  /** the name between the brackets, as written: "conv", "net" */
  name: string;
  /** line of the header, 1-based */
  line: number;
  options: OptionLine[];
}

const NET_NAMES = ['net', 'network'];
/** darknet's recurrent sections: refused by name (this engine has no recurrent layers). */
const RECURRENT_NAMES = ['rnn', 'gru', 'lstm', 'crnn'];
const POLICIES: readonly Policy[] = ['constant', 'step', 'steps', 'exp', 'poly', 'random', 'sigmoid'];

/**
 * Reads a cfg file.
 * @example
 *   const spec = readCfg('cfg/lenet.cfg');
 *   for (const w of spec.warnings) console.error(w);
 */
export function readCfg(path: string): NetworkSpec {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw fileError(path, undefined, `cannot read cfg file (${describeFsError(e)})`);
  }
  return parseCfg(text, path);
}

/**
 * Parses cfg text; `file` names it in errors and warnings (`file:line: ...`).
 * @example
 *   const spec = parseCfg('[net]\nheight=28\nwidth=28\nchannels=1\n[connected]\noutput=10\n', 'x.cfg');
 *   spec.layers[0].outputs; // 10
 */
export function parseCfg(text: string, file: string): NetworkSpec {
  const sections = readSections(text, file);
  if (sections.length === 0) throw fileError(file, undefined, 'no sections: a cfg starts with [net]');

  const [first, ...rest] = sections;
  if (!NET_NAMES.includes(first.name)) {
    throw fileError(file, first.line, `first section must be [net] or [network], not [${excerpt(first.name)}]`);
  }
  if (rest.length === 0) throw fileError(file, first.line, 'no layers after [net]');

  const warnings: string[] = [];
  const netOptions = new Options(file, first.name, first.line, first.options);
  const net = parseNet(netOptions);
  warnings.push(...unusedWarnings(netOptions));

  const layers: LayerSpec[] = [];
  let shape = { h: net.h, w: net.w, c: net.c, inputs: net.inputs };
  for (const s of rest) {
    const { spec, unused } = parseLayer(s, file, net, shape, layers);
    layers.push(spec);
    warnings.push(...unused);
    shape = { h: spec.outH, w: spec.outW, c: spec.outC, inputs: spec.outputs };
  }
  return { file, net, layers, warnings };
}

/** darknet's read_cfg, strict: what darknet skips with a message is an error here. */
function readSections(text: string, file: string): Section[] {
  const sections: Section[] = [];
  // NOTE: darknet splits on \n only, so a CR-only file is one long line to it; we read
  // CRLF, CR-only and LF files alike, a friendlier reading of the same text.
  const lines = text.split(/\r\n|\r|\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    // NOTE: darknet's strip() removes every space and tab inside the line, not only at its
    // ends: `filters = 2 0` is filters=20. We also remove other spaces (\v, \f, a BOM).
    const s = lines[i].replace(/\s+/g, '');
    if (s === '' || s[0] === '#' || s[0] === ';') continue;
    const control = CONTROL_CHARACTER.exec(s);
    if (control) {
      throw fileError(file, line, `control character ${excerpt(control[0])} in '${excerpt(s)}': is this a binary file?`);
    }

    if (s[0] === '[') {
      const close = s.indexOf(']');
      if (close < 0) throw fileError(file, line, `unterminated section header '${excerpt(s)}'`);
      if (close !== s.length - 1) throw fileError(file, line, `malformed section header '${excerpt(s)}' (text after ']')`);
      sections.push({ name: s.slice(1, -1), line, options: [] });
      continue;
    }

    const current = sections[sections.length - 1];
    if (!current) throw fileError(file, line, `malformed line '${excerpt(s)}' (an option before any [section])`);
    const eq = s.indexOf('=');
    // darknet's read_option also refuses an empty value ("could parse").
    if (eq <= 0 || eq === s.length - 1) throw fileError(file, line, `malformed line '${excerpt(s)}' (expected key=value)`);
    current.options.push({ key: s.slice(0, eq), value: s.slice(eq + 1), line });
  }
  return sections;
}

/** parse_net_options with darknet's defaults; what darknet warns about and survives is an error. */
function parseNet(o: Options): NetConfig {
  const batch = o.int('batch', 1);
  const learningRate = o.float('learning_rate', 0.001);
  const momentum = o.float('momentum', 0.9);
  const decay = o.float('decay', 0.0001);
  const subdivisions = o.int('subdivisions', 1);
  if (batch < 1) throw o.error(`batch=${batch} must be at least 1`, 'batch');
  if (subdivisions < 1) throw o.error(`subdivisions=${subdivisions} must be at least 1`, 'subdivisions');
  if (batch % subdivisions !== 0) {
    throw o.error(`subdivisions=${subdivisions} does not divide batch=${batch}`, 'subdivisions');
  }

  const h = nonNegative(o, 'height', 0);
  const w = nonNegative(o, 'width', 0);
  const c = nonNegative(o, 'channels', 0);
  const inputs = nonNegative(o, 'inputs', h * w * c);
  if (!inputs && !(h && w && c)) throw o.error('no input size: give height, width and channels (or inputs)');
  if (h && w && c && inputs !== h * w * c) {
    throw o.error(`inputs=${inputs} does not match height*width*channels = ${h * w * c}`, 'inputs');
  }
  const inputFloats = (batch / subdivisions) * inputs;
  if (inputFloats > MAX_ARRAY_FLOATS) {
    throw o.error(`the input (batch ${batch / subdivisions} x ${inputs} values) would hold ${floats(inputFloats)} floats: `
      + `one array holds at most ${MAX_ARRAY_FLOATS}`);
  }

  const net: NetConfig = {
    // darknet stores the images per forward pass, not the cfg's batch
    batch: batch / subdivisions,
    subdivisions,
    learningRate,
    momentum,
    decay,
    h,
    w,
    c,
    inputs,
    maxCrop: o.int('max_crop', w * 2),
    minCrop: o.int('min_crop', w),
    angle: o.float('angle', 0),
    aspect: o.float('aspect', 1),
    saturation: o.float('saturation', 1),
    exposure: o.float('exposure', 1),
    hue: o.float('hue', 0),
    policy: parsePolicy(o),
    burnIn: o.int('burn_in', 0),
    power: o.float('power', 4),
    // read below only for the policies that use them (so a stray key is reported unused)
    step: 1,
    scale: 1,
    steps: [],
    scales: [],
    gamma: 1,
    maxBatches: 0,
  };

  switch (net.policy) {
    case 'step':
      net.step = o.int('step', 1);
      net.scale = o.float('scale', 1);
      break;
    case 'steps': {
      const steps = o.intList('steps');
      const scales = o.floatList('scales');
      if (!steps || !scales) throw o.error('policy=steps needs both steps= and scales=', 'policy');
      if (steps.length !== scales.length) {
        throw o.error(`steps= has ${steps.length} values but scales= has ${scales.length}`, 'scales');
      }
      net.steps = steps;
      net.scales = scales;
      break;
    }
    case 'exp':
      net.gamma = o.float('gamma', 1);
      break;
    case 'sigmoid':
      net.gamma = o.float('gamma', 1);
      net.step = o.int('step', 1);
      break;
    default:
      break;
  }
  net.maxBatches = nonNegative(o, 'max_batches', 0);
  return net;
}

function parsePolicy(o: Options): Policy {
  // NOTE: darknet prints "Couldn't find policy" and trains with constant; a typo there
  // silently changes training, so here it is an error.
  return o.choice('policy', 'constant', POLICIES);
}

function nonNegative(o: Options, key: string, fallback: number): number {
  const v = o.int(key, fallback);
  if (v < 0) throw o.error(`${key}=${v} must not be negative`, key);
  return v;
}

/** One layer section: the keys every layer may carry, the definition's parse, the unused keys. */
function parseLayer(
  s: Section,
  file: string,
  net: NetConfig,
  shape: { h: number; w: number; c: number; inputs: number },
  previous: readonly LayerSpec[],
): { spec: LayerSpec; unused: string[] } {
  const def = SECTIONS.get(s.name);
  if (!def) {
    if (NET_NAMES.includes(s.name)) throw fileError(file, s.line, `[${s.name}] may only be the first section`);
    if (RECURRENT_NAMES.includes(s.name)) {
      throw fileError(file, s.line, `[${s.name}] is a recurrent layer: recurrent layers (rnn, gru, lstm, crnn) are out of scope for darknet-ts`);
    }
    throw fileError(file, s.line, `unknown section [${excerpt(s.name)}]; known: ${[...SECTIONS.keys()].join(', ')}`);
  }
  const o = new Options(file, s.name, s.line, s.options);
  // NOTE: darknet reads these after the layer's own keys; none of them affects a shape.
  const common: CommonSpec = {
    learningRateScale: o.float('learning_rate', 1),
    stopbackward: o.flag('stopbackward'),
    dontload: o.flag('dontload'),
    dontsave: o.flag('dontsave'),
    dontloadscales: o.flag('dontloadscales'),
  };
  const ctx: ParseContext = { index: previous.length, batch: net.batch, ...shape, previous };
  const spec = def.parse(o, ctx, common);
  if (!(spec.outputs > 0)) {
    throw fileError(
      file,
      s.line,
      `[${s.name}] (layer ${ctx.index}) has no output: ${spec.outW} x ${spec.outH} x ${spec.outC} = ${spec.outputs}`,
    );
  }
  const impossible = impossibleSize(spec);
  if (impossible) throw fileError(file, s.line, `[${s.name}] (layer ${ctx.index}) ${impossible}`);
  return { spec, unused: unusedWarnings(o) };
}

/**
 * Why a layer's tensors cannot exist, or undefined: a shape that is not a whole number
 * (or not positive where it must be), or an array of more floats than one array can hold.
 * Whether the whole network fits in memory is memory.ts's checkNetworkBudget.
 */
function impossibleSize(l: LayerSpec): string | undefined {
  const whole = (x: number) => Number.isSafeInteger(x) && x >= 0;
  // h, w, c are 0 for a flat (non-image) input or output
  const shapes: [string, number, boolean][] = [
    ['batch', l.batch, true], ['inputs', l.inputs, true], ['outputs', l.outputs, true],
    ['h', l.h, false], ['w', l.w, false], ['c', l.c, false],
    ['out_h', l.outH, false], ['out_w', l.outW, false], ['out_c', l.outC, false],
    ...l.params.map((p): [string, number, boolean] => [p.name, p.size, true]),
  ];
  for (const [name, x, positive] of shapes) {
    if (!whole(x) || (positive && x === 0)) {
      return `has ${name} = ${x}: it must be a ${positive ? 'positive' : 'non-negative'} whole number`;
    }
  }
  for (const a of layerArrays(l)) {
    if (!(a.floats <= MAX_ARRAY_FLOATS)) {
      return `would need ${a.name} of ${floats(a.floats)} floats (batch ${l.batch}, ${l.inputs} inputs, ${l.outputs} outputs): `
        + `one array holds at most ${MAX_ARRAY_FLOATS}`;
    }
  }
  return undefined;
}

/** A float count for a message: exact when it is, else like `4.00e+15`. */
function floats(n: number): string {
  return Number.isSafeInteger(n) ? String(n) : n.toExponential(2);
}

/** darknet's option_unused ("Unused field"), one `file:line:` warning per key. */
function unusedWarnings(o: Options): string[] {
  return o.unused().map((l) => `${o.file}:${l.line}: unused field '${excerpt(l.key)}' in [${o.section}]`);
}

function describeFsError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'it is a directory';
  if (code === 'EACCES') return 'permission denied';
  return excerpt(e instanceof Error ? e.message : String(e), 100);
}
