import type { LayerSpec } from '../engine/layer';

export type Policy = 'constant' | 'step' | 'steps' | 'exp' | 'poly' | 'random' | 'sigmoid';

/** The [net] section, with darknet's defaults (parser.c parse_net_options). */
export interface NetConfig {
  /** images per forward pass: cfg batch / subdivisions, as darknet stores it */
  batch: number;
  subdivisions: number;
  learningRate: number;
  momentum: number;
  decay: number;
  h: number;
  w: number;
  c: number;
  inputs: number;
  policy: Policy;
  /** step and sigmoid policies */
  step: number;
  /** step policy */
  scale: number;
  /** steps policy */
  steps: number[];
  scales: number[];
  /** exp and sigmoid policies */
  gamma: number;
  /** poly and random policies (default 4) */
  power: number;
  burnIn: number;
  maxBatches: number;
  maxCrop: number;
  minCrop: number;
  angle: number;
  aspect: number;
  saturation: number;
  exposure: number;
  hue: number;
}

/** A parsed cfg: the [net] section and every layer's spec, plus the parser's warnings. */
export interface NetworkSpec {
  file: string;
  net: NetConfig;
  layers: LayerSpec[];
  /** e.g. "cfg/x.cfg:12: unused field 'foo' in [convolutional]" */
  warnings: string[];
}
