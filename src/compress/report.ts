import type { NetworkSpec } from '../cfg/config';
import type { WeightsFile } from '../io/weights';
import { prunableLayers } from '../prune/threshold';
import { groupThousands } from '../report/summary';
import type { SectionSize } from './dcw';

/**
 * Deep Compression's per-layer table (Han et al. 2016, Tables 2 and 3): for each conv and
 * connected layer its weights, non-zeros, widths, codebook size and bytes after each stage,
 * counted from what was really stored:
 *   dense      4 bytes per weight (the .weights file)
 *   pruned     P: each stored entry (non-zeros and fillers) as a float32 value plus its
 *              relative index (`indexBits`), the paper's sparse format before sharing
 *   quantised  P+Q: each entry as a `bits`-bit codebook index plus its relative index, and
 *              the codebook as float32
 *   Huffman    P+Q+H: the Huffman-coded streams and the codebook, as written in the .dcw
 * Biases and batch-norm arrays are float32 in every stage (the `other` row).
 */

export interface CompressionRow {
  index: number;
  name: string;
  weights: number;
  nonzero: number;
  bits: number;
  indexBits: number;
  codebook: number;
  /** entries stored: non-zeros plus fillers */
  entries: number;
  fillers: number;
  bytes: StageBytes;
  /** Huffman bits per stored codebook index and per relative index (the paper's P+Q+H columns) */
  huffmanBitsPerWeight: number;
  huffmanBitsPerIndex: number;
}

export interface StageBytes {
  dense: number;
  pruned: number;
  quantized: number;
  huffman: number;
}

export interface CompressionReport {
  layers: CompressionRow[];
  /** biases and batch-norm arrays (float32 in every stage) */
  other: { params: number; bytes: number };
  /** layers plus other, without file headers */
  total: StageBytes & { weights: number; nonzero: number };
  /** the files themselves: a dense .weights of this cfg and the .dcw written */
  files: { weights: number; dcw: number };
  /** top-1 after each stage (undefined: not evaluated) */
  top1: { pruned?: number; quantized?: number; finetuned?: number; dcw?: number };
  /** images each top-1 was measured on */
  evalImages?: number;
}

/**
 * The report from a model's pruned weights (for non-zero counts) and what the .dcw writer
 * said each section cost.
 */
export function compressionReport(
  spec: NetworkSpec,
  pruned: WeightsFile,
  sections: readonly SectionSize[],
  files: { weights: number; dcw: number },
  widths: ReadonlyMap<number, { bits: number; indexBits: number }>,
): CompressionReport {
  const names = new Map(prunableLayers(spec).map((p) => [p.index, p.name]));
  const layers: CompressionRow[] = [];
  let otherParams = 0;
  let otherBytes = 0;
  for (const s of sections) {
    const size = spec.layers[s.layer].params.find((p) => p.name === s.name)!.size;
    const width = widths.get(s.layer);
    if (!s.coded || !width) {
      otherParams += size;
      otherBytes += 4 * size;
      continue;
    }
    const c = s.coded;
    const weights = pruned.layers[s.layer].weights;
    let nonzero = 0;
    if (weights) for (const w of weights) if (w !== 0) nonzero++;
    layers.push({
      index: s.layer,
      name: names.get(s.layer) ?? String(s.layer),
      weights: size,
      nonzero,
      bits: width.bits,
      indexBits: width.indexBits,
      codebook: c.codebook,
      entries: c.entries,
      fillers: c.fillers,
      bytes: {
        dense: 4 * size,
        pruned: Math.ceil((c.entries * (32 + width.indexBits)) / 8),
        quantized: Math.ceil((c.entries * (width.bits + width.indexBits)) / 8) + 4 * c.codebook,
        huffman: c.skipBytes + c.codeBytes + 4 * c.codebook,
      },
      huffmanBitsPerWeight: c.entries ? (8 * c.codeBytes) / c.entries : 0,
      huffmanBitsPerIndex: c.entries ? (8 * c.skipBytes) / c.entries : 0,
    });
  }
  const sum = (f: (r: CompressionRow) => number) => layers.reduce((a, r) => a + f(r), 0);
  return {
    layers,
    other: { params: otherParams, bytes: otherBytes },
    total: {
      weights: sum((r) => r.weights),
      nonzero: sum((r) => r.nonzero),
      dense: sum((r) => r.bytes.dense) + otherBytes,
      pruned: sum((r) => r.bytes.pruned) + otherBytes,
      quantized: sum((r) => r.bytes.quantized) + otherBytes,
      huffman: sum((r) => r.bytes.huffman) + otherBytes,
    },
    files,
    top1: {},
  };
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const ratio = (dense: number, bytes: number) => `${(dense / bytes).toFixed(1)}x`;

/**
 * The report as text: the per-layer table, then the files and top-1 after each stage.
 * @example
 *   layer  weights  non-zero  density  bits  index  codebook  dense B  pruned B  quantised B  Huffman B  w bits(H)  i bits(H)  ratio
 *   fc1    235,200    18,816    8.00%     6      5        63  940,800  ...
 */
export function formatCompression(r: CompressionReport): string {
  const header = ['layer', 'weights', 'non-zero', 'density', 'bits', 'index', 'codebook', 'fillers', 'dense B', 'pruned B', 'quantised B', 'Huffman B', 'w bits (H)', 'i bits (H)', 'ratio'];
  const rows = r.layers.map((l) => [
    l.name, groupThousands(l.weights), groupThousands(l.nonzero), pct(l.nonzero / l.weights), String(l.bits), String(l.indexBits), String(l.codebook),
    groupThousands(l.fillers), groupThousands(l.bytes.dense), groupThousands(l.bytes.pruned), groupThousands(l.bytes.quantized), groupThousands(l.bytes.huffman),
    l.huffmanBitsPerWeight.toFixed(2), l.huffmanBitsPerIndex.toFixed(2), ratio(l.bytes.dense, l.bytes.huffman),
  ]);
  const b = r.other.bytes;
  rows.push(['other', groupThousands(r.other.params), '', '', '32', '', '', '', groupThousands(b), groupThousands(b), groupThousands(b), groupThousands(b), '', '', '1.0x']);
  const t = r.total;
  rows.push([
    'total', groupThousands(t.weights), groupThousands(t.nonzero), pct(t.weights ? t.nonzero / t.weights : 0), '', '', '', groupThousands(r.layers.reduce((a, l) => a + l.fillers, 0)),
    groupThousands(t.dense), groupThousands(t.pruned), groupThousands(t.quantized), groupThousands(t.huffman), '', '', ratio(t.dense, t.huffman),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  const out = [line(header), ...rows.map(line), ''];
  const f = r.files;
  out.push(`dense .weights ${groupThousands(f.weights)} bytes; pruned ${ratio(f.weights, t.pruned)}, quantised ${ratio(f.weights, t.quantized)}, ` +
    `Huffman ${ratio(f.weights, t.huffman)} smaller (arrays only)`);
  out.push(`.dcw file      ${groupThousands(f.dcw)} bytes: ${ratio(f.weights, f.dcw)} smaller than the dense .weights (headers, layer table and checksum included)`);
  const stages: Array<[string, number | undefined]> = [
    ['pruned (input)', r.top1.pruned], ['quantised', r.top1.quantized], ['fine-tuned', r.top1.finetuned], ['.dcw as written', r.top1.dcw],
  ];
  const shown = stages.filter(([, v]) => v !== undefined).map(([n, v]) => `${n} ${pct(v!)}`);
  if (shown.length) out.push(`top-1${r.evalImages ? ` (${groupThousands(r.evalImages)} images)` : ''}: ${shown.join(', ')}`);
  return out.join('\n') + '\n';
}
