import { readFileSync } from 'fs';
import { dirname, isAbsolute, join } from 'path';
import type { Kernels } from '../kernels/types';
import { baseSpec, type CommonSpec, type Layer, type LayerDefinition, type LayerSpec, type NetState, type ParseContext } from '../engine/layer';
import type { Options } from '../cfg/options';
import { fileError } from '../errors';

/**
 * `[softmax]`: darknet's softmax_layer.c, with its cross-entropy loss.
 * - plain: `groups` equal runs of the inputs, each a softmax (a kernel);
 * - `tree=FILE`: darknet's hierarchical softmax: one softmax per group of siblings in the
 *   tree file (tree.c's read_tree), on the host; truth values equal to SECRET_NUM (-1234,
 *   what darknet's loader writes for groups off the label's path) give no loss or delta,
 *   as darknet's GPU path masks them (its CPU path forgets to);
 * - `spatial=1`: a softmax over the channels at every pixel (darknet's GPU path; its CPU
 *   path ignores the key), on the host.
 */
export interface SoftmaxSpec extends LayerSpec {
  type: 'softmax';
  /** independent softmaxes over consecutive runs of inputs / groups values */
  groups: number;
  temperature: number;
  /** darknet's `noloss`: compute no loss or delta even with a truth */
  noloss: boolean;
  /** the sizes of the tree's sibling groups, in file order (null without tree=) */
  tree: number[] | null;
  /** per entry of the tree, its parent's index (-1 for a root); null without tree= */
  treeParents: number[] | null;
  /** softmax over channels at each pixel */
  spatial: boolean;
}

/** darknet's SECRET_NUM: a truth value meaning "no label here". */
export const SECRET_NUM = -1234;

function parse(o: Options, ctx: ParseContext, common: CommonSpec): SoftmaxSpec {
  const groups = o.int('groups', 1);
  const temperature = o.float('temperature', 1);
  const treeFile = o.raw('tree');
  const spatial = o.float('spatial', 0) !== 0; // darknet reads it as a float
  const noloss = o.flag('noloss');
  if (groups < 1 || ctx.inputs % groups !== 0) {
    throw o.error(`softmax groups=${groups} must divide its ${ctx.inputs} inputs`, 'groups');
  }
  if (!(temperature > 0)) throw o.error(`softmax temperature=${temperature} must be positive`, 'temperature');
  if (treeFile !== undefined && (groups !== 1 || spatial)) throw o.error('softmax tree= cannot be combined with groups or spatial (darknet ignores them then)', 'tree');
  if (spatial) {
    if (groups !== 1 || temperature !== 1) throw o.error('softmax spatial=1 cannot be combined with groups or temperature (darknet ignores them then)', 'spatial');
    if (!(ctx.h && ctx.w && ctx.c)) throw o.error('softmax spatial=1 needs an image input (h, w, c > 0)', 'spatial');
  }
  const parsedTree = treeFile === undefined ? null : readTree(o, treeFile);
  const tree = parsedTree?.groups ?? null;
  if (tree) {
    const n = tree.reduce((s, g) => s + g, 0);
    if (n !== ctx.inputs) throw o.error(`softmax tree=${treeFile} has ${n} entries but the layer has ${ctx.inputs} inputs`, 'tree');
  }
  return {
    // NOTE: darknet leaves a softmax's out_w/out_h/out_c at 0: what follows sees a flat
    // vector (so a [maxpool] after it is an error, as in darknet).
    ...baseSpec('softmax', o, ctx, common, { outH: 0, outW: 0, outC: 0, outputs: ctx.inputs }),
    type: 'softmax',
    groups,
    temperature,
    noloss,
    tree,
    treeParents: parsedTree?.parents ?? null,
    spatial,
    params: [],
    flops: 0,
    describe: `softmax                                        ${String(ctx.inputs).padStart(4)}`,
  };
}

/**
 * The file a cfg's `tree=` names: as given (relative to the working directory, as darknet
 * opens it), else relative to the cfg file's folder and its parent (darknet's cfgs say
 * `data/9k.tree` from the folder above `cfg/`).
 */
function findTreeFile(o: Options, path: string): string {
  const tried = isAbsolute(path) ? [path] : [path, join(dirname(o.file), path), join(dirname(o.file), '..', path)];
  for (const p of tried) {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      // try the next place
    }
  }
  throw o.error(`softmax tree file '${path}' cannot be read (tried ${tried.join(', ')})`, 'tree');
}

/**
 * tree.c's read_tree, the parts darknet uses: each line is `name parent` (parent -1 for a
 * root, else the line index of an earlier entry); each run of consecutive lines with the
 * same parent is one softmax group. Returns the group sizes in order and each entry's parent.
 */
export function parseTree(text: string, where: (line: number, message: string) => Error): { groups: number[]; parents: number[] } {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const parents: number[] = [];
  const sizes: number[] = [];
  let lastParent = -1;
  let size = 0;
  lines.forEach((raw, i) => {
    const m = /^\s*(\S+)\s+([+-]?\d+)/.exec(raw);
    if (!m) throw where(i + 1, `expected 'name parent' (parent -1 for a root), got '${raw.slice(0, 40)}'`);
    const parent = parseInt(m[2], 10);
    if (parent < -1 || parent >= i) throw where(i + 1, `parent ${parent} must be -1 or an earlier line's index (0 to ${i - 1})`);
    parents.push(parent);
    // darknet closes the running group (even an empty first one) whenever the parent changes
    if (parent !== lastParent) {
      sizes.push(size);
      size = 0;
      lastParent = parent;
    }
    size++;
  });
  sizes.push(size);
  return { groups: sizes.filter((s) => s > 0), parents }; // an empty group is a softmax over nothing
}

/** The group sizes of a tree file's text (see parseTree). */
export function parseTreeGroups(text: string, where: (line: number, message: string) => Error): number[] {
  return parseTree(text, where).groups;
}

function readTree(o: Options, path: string): { groups: number[]; parents: number[] } {
  const text = findTreeFile(o, path);
  return parseTree(text, (line, message) => fileError(path, line, message));
}

/**
 * darknet's hierarchy_predictions with only_leaves, what its classifier predict and valid
 * apply to a tree softmax's output: each entry's probability times its parent's (parents
 * come first, so one pass gives the path's product), then every entry that is some
 * entry's parent set to 0. In place on `rows` rows of `parents.length` values.
 */
export function hierarchyPredictions(out: { [i: number]: number }, parents: readonly number[], rows = 1): void {
  const n = parents.length;
  const inner = new Uint8Array(n);
  for (const p of parents) if (p >= 0) inner[p] = 1;
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    for (let j = 0; j < n; j++) if (parents[j] >= 0) out[o + j] *= out[o + parents[j]];
    for (let j = 0; j < n; j++) if (inner[j]) out[o + j] = 0;
  }
}

/** The tree darknet's verbs apply to a network's output (its first tree softmax's, as parse_network_cfg's net->hierarchy), or null. */
export function networkHierarchy(layers: readonly LayerSpec[]): number[] | null {
  for (const l of layers) if (l.type === 'softmax' && (l as SoftmaxSpec).treeParents) return (l as SoftmaxSpec).treeParents;
  return null;
}

/** Softmax of x[offset + i * stride], i < n, into out, at temperature T (darknet's softmax). */
function softmaxRun(out: Float64Array, x: ArrayLike<number>, offset: number, n: number, stride: number, T: number): void {
  let largest = -Infinity;
  for (let i = 0; i < n; i++) largest = Math.max(largest, x[offset + i * stride]);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(x[offset + i * stride] / T - largest / T);
    sum += e;
    out[offset + i * stride] = e;
  }
  for (let i = 0; i < n; i++) out[offset + i * stride] /= sum;
}

/** The tree and spatial softmaxes on host arrays. */
export function hostSoftmax(out: Float64Array, x: ArrayLike<number>, s: SoftmaxSpec): void {
  for (let b = 0; b < s.batch; b++) {
    const base = b * s.inputs;
    if (s.tree) {
      let count = 0;
      for (const size of s.tree) {
        softmaxRun(out, x, base + count, size, 1, s.temperature);
        count += size;
      }
    } else {
      const spatial = s.h * s.w;
      for (let p = 0; p < spatial; p++) softmaxRun(out, x, base + p, s.c, spatial, 1);
    }
  }
}

/** darknet's softmax_x_ent on host arrays, skipping SECRET_NUM truths; returns the summed loss. */
export function maskedCrossEntropy(delta: Float64Array, p: ArrayLike<number>, t: ArrayLike<number>): number {
  let cost = 0;
  for (let i = 0; i < delta.length; i++) {
    if (t[i] === SECRET_NUM) {
      delta[i] = 0;
      continue;
    }
    if (t[i]) cost += -Math.log(p[i]);
    delta[i] = t[i] - p[i];
  }
  return cost;
}

function create(spec: SoftmaxSpec, k: Kernels): Layer {
  const shape = { batch: spec.batch, inputs: spec.inputs, groups: spec.groups, temperature: spec.temperature };
  const onHost = spec.tree !== null || spec.spatial;
  return {
    spec,
    output: k.alloc(spec.batch * spec.outputs), // [batch, inputs]
    delta: k.alloc(spec.batch * spec.outputs), // [batch, inputs]
    params: [],
    // a loss layer from the start, so the network's mean cost counts it (darknet's calc_network_cost)
    cost: 0,

    forward(net: NetState) {
      if (onHost) {
        const out = new Float64Array(this.output.size);
        hostSoftmax(out, net.k.read(net.input), spec);
        net.k.upload(this.output, out);
      } else {
        net.k.softmax(this.output, net.input, shape);
      }
      this.cost = 0;
      if (!net.truth || spec.noloss) return;
      // NOTE: delta = truth - output is minus the gradient of the cross entropy only at
      // temperature 1; darknet uses it at every temperature, and so do we.
      if (spec.tree) {
        const delta = new Float64Array(this.delta.size);
        this.cost = maskedCrossEntropy(delta, net.k.read(this.output), net.k.read(net.truth));
        net.k.upload(this.delta, delta);
      } else {
        this.cost = net.k.softmaxCrossEntropy(this.delta, this.output, net.truth);
      }
    },

    backward(net: NetState) {
      if (net.delta) net.k.axpby(net.delta, 1, this.delta, 1);
    },
  };
}

export const softmax: LayerDefinition<SoftmaxSpec> = { type: 'softmax', names: ['softmax', 'soft'], parse, create };
