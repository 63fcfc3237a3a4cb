import { DarknetError } from '../errors';
import type { LayerDefinition, LayerType } from '../engine/layer';
import { avgpool } from './avgpool';
import { batchnorm } from './batchnorm';
import { connected } from './connected';
import { convolutional } from './convolutional';
import { cost } from './cost';
import { crop } from './crop';
import { deconvolutional } from './deconvolutional';
import { dropout } from './dropout';
import { l2norm } from './l2norm';
import { local } from './local';
import { logistic } from './logistic';
import { maxpool } from './maxpool';
import { normalization } from './normalization';
import { reorg } from './reorg';
import { route } from './route';
import { shortcut } from './shortcut';
import { softmax } from './softmax';
import { upsample } from './upsample';

/** Every layer type this engine builds. */
export const DEFINITIONS: readonly LayerDefinition<any>[] = [
  convolutional, connected, maxpool, avgpool, softmax, dropout, cost, route, shortcut, batchnorm,
  crop, reorg, local, normalization, l2norm, logistic, upsample, deconvolutional,
];

/**
 * Section name (and alias) -> definition. Built once; a name claimed twice is a
 * programming error and throws at load time.
 */
export function buildSectionTable(defs: readonly LayerDefinition<any>[]): ReadonlyMap<string, LayerDefinition<any>> {
  const table = new Map<string, LayerDefinition<any>>();
  for (const d of defs) {
    for (const name of d.names) {
      if (table.has(name)) throw new Error(`section name '${name}' is claimed by both ${table.get(name)!.type} and ${d.type}`);
      table.set(name, d);
    }
  }
  return table;
}

export const SECTIONS = buildSectionTable(DEFINITIONS);

export function definitionOf(type: LayerType): LayerDefinition<any> {
  const d = DEFINITIONS.find((x) => x.type === type);
  if (!d) throw new DarknetError(`no layer type '${type}'`);
  return d;
}
