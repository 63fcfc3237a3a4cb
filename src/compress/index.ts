/**
 * Deep Compression (Han, Mao and Dally 2016) after pruning: per-layer k-means weight
 * sharing with linear initialisation, fine-tuning of the shared values, and storage as
 * Huffman-coded relative positions and codebook indices in a .dcw file
 * (docs/dcw-format.md). Works on objects; only the .dcw read/write functions touch files.
 *
 * @example
 *   const widths = parseWidths('conv=8,fc=5', 'conv=8,fc=5', spec);
 *   const codes = kmeansModel(spec, pruned, widths);
 *   writeDcw('lenet.dcw', compressedModel(spec, sharedWeights(pruned, codes), codes, widths), spec);
 *   const back = readWeightsOrDcw('lenet.dcw', spec); // exactly sharedWeights(pruned, codes)
 */
export { kmeansLayer, assign, decodeLayer, MAX_BITS, type LayerCode, type KmeansOptions } from './kmeans';
export { finetuneCentroids, type FinetuneResult } from './finetune';
export { huffmanLengths, canonicalCodes, encodeHuffman, decodeHuffman, MAX_CODE_LENGTH } from './huffman';
export { toRelative, fromRelative, MAX_INDEX_BITS, type RelativeEntries } from './sparse';
export {
  DCW_MAGIC, DCW_VERSION, isDcw, serializeDcw, writeDcw, decodeDcw, parseDcw, readDcw, readWeightsOrDcw, modelToWeights,
  type CodedWeights, type CompressedModel, type SectionSize,
} from './dcw';
export { parseLayerWidths, parseWidths, kmeansModel, sharedWeights, compressedModel, type LayerWidths } from './quantize';
export { compressionReport, formatCompression, type CompressionReport, type CompressionRow, type StageBytes } from './report';
export { StreamError } from './bits';
export { crc32 } from './crc32';
