import type { NetworkSpec } from '../../cfg/config';
import type { LayerSpec } from '../../engine/layer';
import type { ConvolutionalSpec } from '../../layers/convolutional';
import type { RouteSpec } from '../../layers/route';
import type { ShortcutSpec } from '../../layers/shortcut';

/**
 * Which channels of a darknet network are the same channel, and which may not be removed:
 * the dependency graph of channel pruning (what torch-pruning and NNI build from autograd,
 * built here from darknet's data flow, layer type by layer type).
 *
 * Every layer's output is a list of channels in memory order, each a run of `length`
 * values per image (h * w for an image, 1 for a connected layer's neuron). A channel's `id`
 * names where it was made: a filter of a convolutional layer, a neuron of a connected one,
 * or a channel of the network's input. maxpool, avgpool, dropout, batchnorm, softmax and
 * cost pass their input's channels through, [route] concatenates its layers' lists, and
 * [shortcut] TIES channel k of its input to channel k of `from`: tied ids form one class,
 * removed all together or not at all.
 */

/** One channel of a layer's output. */
export interface Channel {
  /** the filter, neuron or input channel that made it (see ChannelGraph.owner) */
  id: number;
  /** values per image: h * w of the layer's output for an image, 1 when flat */
  length: number;
}

/** A filter or neuron of a convolutional or connected layer. */
export interface Filter {
  layer: number;
  filter: number;
}

export interface ChannelGraph {
  /** per layer, its output channels in order; their lengths sum to the layer's outputs */
  outputs: Channel[][];
  /** the channels of the [net] input */
  input: Channel[];
  /** per id, the filter that makes it; null for the input's channels and those of layers pruning does not know */
  owner: Array<Filter | null>;
  /** per layer that makes channels (convolutional, connected): the ids of its filters, in order */
  producers: Map<number, number[]>;
  /** the class of an id: ids tied by a [shortcut] share one */
  classOf(id: number): number;
  /** classes that must stay, with the first reason found */
  protectedClasses: Map<number, string>;
}

/** The channels a layer reads: the previous layer's output, or the network's input for layer 0. */
export function inputChannels(g: ChannelGraph, layer: number): Channel[] {
  return layer === 0 ? g.input : g.outputs[layer - 1];
}

/** Why a filter must stay, or undefined when it may go. */
export function whyProtected(g: ChannelGraph, id: number): string | undefined {
  return g.protectedClasses.get(g.classOf(id));
}

/** Builds the channel graph of a spec (shapes only; no weights). */
export function channelGraph(spec: NetworkSpec): ChannelGraph {
  const owner: Array<Filter | null> = [];
  const parent: number[] = [];
  const newId = (o: Filter | null) => {
    owner.push(o);
    parent.push(parent.length);
    return parent.length - 1;
  };
  const find = (id: number): number => {
    while (parent[id] !== id) {
      parent[id] = parent[parent[id]];
      id = parent[id];
    }
    return id;
  };
  const union = (a: number, b: number) => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };

  const { net } = spec;
  const imageInput = net.h > 0 && net.w > 0 && net.c > 0;
  const input: Channel[] = imageInput
    ? Array.from({ length: net.c }, () => ({ id: newId(null), length: net.h * net.w }))
    : Array.from({ length: net.inputs }, () => ({ id: newId(null), length: 1 }));
  const outputs: Channel[][] = [];
  const producers = new Map<number, number[]>();
  // reasons by id, turned into reasons by class once every tie is made
  const reasons = new Map<number, string>();
  const protect = (channels: readonly Channel[], why: string) => {
    for (const ch of channels) if (!reasons.has(ch.id)) reasons.set(ch.id, why);
  };
  protect(input, "the network's input");

  const relength = (channels: readonly Channel[], length: number) => channels.map((ch) => ({ id: ch.id, length }));
  spec.layers.forEach((l, i) => {
    const inCh = i === 0 ? input : outputs[i - 1];
    const name = `layer ${i} (${l.type})`;
    let out: Channel[];
    switch (l.type) {
      case 'convolutional':
      case 'connected': {
        const count = l.type === 'connected' ? l.outputs : l.outC;
        const ids = Array.from({ length: count }, (_, f) => newId({ layer: i, filter: f }));
        producers.set(i, ids);
        const length = l.type === 'connected' ? 1 : l.outH * l.outW;
        out = ids.map((id) => ({ id, length }));
        const groups = l.type === 'convolutional' ? (l as ConvolutionalSpec).groups : 1;
        if (groups > 1) {
          const why = `${name} is a grouped convolution (groups=${groups}): pruning inside groups is not supported`;
          protect(inCh, why);
          protect(out, why);
        }
        break;
      }
      case 'maxpool':
        out = relength(inCh, l.outH * l.outW);
        break;
      case 'avgpool':
        out = relength(inCh, 1);
        break;
      case 'dropout':
      case 'batchnorm':
        out = inCh.slice();
        break;
      case 'softmax':
      case 'cost':
        // Removing an input of a softmax changes every output's normalization; a cost compares all.
        protect(inCh, `read by ${name}`);
        out = inCh.slice();
        break;
      case 'route':
        out = (l as RouteSpec).layers.flatMap((r) => outputs[r]);
        break;
      case 'shortcut': {
        const s = l as ShortcutSpec;
        const from = outputs[s.from];
        out = inCh.slice();
        if (s.fromC === s.c && s.fromW === s.w && s.fromH === s.h) {
          for (let k = 0; k < out.length; k++) union(out[k].id, from[k].id);
        } else {
          // NOTE: with other shapes darknet adds only min(c) channels, at sampled positions, so a
          // removed channel would shift the pairing or not be constant: keep both sides whole.
          const why = `${name} adds layer ${s.from} (${s.fromW} x ${s.fromH} x ${s.fromC}) to a ${s.w} x ${s.h} x ${s.c} input`;
          protect(inCh, why);
          protect(from, why);
        }
        break;
      }
      default: {
        // crop, reorg, upsample, local, deconvolutional, normalization, l2norm, logistic...:
        // what they read and what they make stay whole (fresh channels, none removable)
        const why = `${name}: a layer type channel pruning does not know`;
        protect(inCh, why);
        const flat = l.outC <= 0 || l.outH * l.outW * l.outC !== l.outputs;
        const count = flat ? l.outputs : l.outC;
        const length = flat ? 1 : l.outH * l.outW;
        out = Array.from({ length: count }, () => ({ id: newId(null), length }));
        protect(out, why);
      }
    }
    checkLayout(l, out);
    outputs.push(out);
  });
  protect(outputs[outputs.length - 1], "the network's output (the classes)");

  const protectedClasses = new Map<number, string>();
  for (const [id, why] of reasons) if (!protectedClasses.has(find(id))) protectedClasses.set(find(id), why);
  return { outputs, input, owner, producers, classOf: find, protectedClasses };
}

/** The channel list must cover the layer's outputs exactly (a programming error otherwise). */
function checkLayout(l: LayerSpec, out: readonly Channel[]): void {
  const total = out.reduce((s, ch) => s + ch.length, 0);
  if (total !== l.outputs) {
    throw new Error(`channel graph: layer ${l.index} (${l.type}) has ${l.outputs} outputs, its channels cover ${total}`);
  }
  if (l.outC > 0 && l.type !== 'connected' && out.length !== l.outC) {
    throw new Error(`channel graph: layer ${l.index} (${l.type}) has ${l.outC} channels, the graph ${out.length}`);
  }
}
