/**
 * darknet's model zoo, cfg by cfg: does each classifier cfg in a darknet `cfg/` folder
 * load, does `summary` print darknet's layer table (every row, and a BFLOPs total equal to
 * darknet's operation count), does a forward and backward pass run?
 *
 *   npm run build && node dist/scripts/darknet-zoo.js --cfgs ~/darknet/cfg --darknet ~/darknet/darknet
 *   node dist/scripts/darknet-zoo.js --cfgs ~/darknet/cfg --max-inputs 0   # load and compare only
 *
 * A classifier is a cfg whose last layer is [softmax], [cost] or [logistic] and that has
 * no detection layer ([region], [yolo], [detection], [iseg]); every cfg is loaded and its
 * table compared, only classifiers are run. darknet's table comes from
 * `darknet ops <cfg>` (it parses the cfg and prints the table on stderr, no weights
 * needed), run from the folder above `cfg/`, as darknet's cfgs expect (tree=data/9k.tree).
 * Forward and backward run at batch 1 (training mode, a one-hot truth) on `--backend`
 * (default reference), with the cfg's input size
 * (`--max-inputs N` skips the run for nets with more than N activation floats, e.g. for a
 * small machine; default 60M).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { readCfg } from '../src/cfg/parser';
import { Network, withBatch } from '../src/engine/network';
import { createKernels } from '../src/kernels/backend';
import type { BackendName, Kernels } from '../src/kernels/types';
import type { NetworkSpec } from '../src/cfg/config';

const DETECTION = ['[region]', '[yolo]', '[detection]', '[iseg]'];
const LOSS = ['[softmax]', '[soft]', '[cost]', '[logistic]'];

interface Args {
  cfgs: string;
  darknet: string | null;
  maxInputs: number;
  only: string[] | null;
  backend: BackendName;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { cfgs: '', darknet: null, maxInputs: 60e6, only: null, backend: 'reference' };
  for (let i = 0; i < argv.length; i++) {
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
      return argv[++i];
    };
    if (argv[i] === '--cfgs') args.cfgs = next();
    else if (argv[i] === '--darknet') args.darknet = next();
    else if (argv[i] === '--max-inputs') args.maxInputs = Number(next());
    else if (argv[i] === '--only') args.only = next().split(',');
    else if (argv[i] === '--backend') args.backend = next() as BackendName;
    else throw new Error(`unknown option ${argv[i]} (options: --cfgs DIR, --darknet PATH, --max-inputs N, --only a.cfg,b.cfg, --backend NAME)`);
  }
  if (!args.cfgs) throw new Error('give --cfgs /path/to/darknet/cfg');
  return args;
}

/** Section names in order, as darknet's read_cfg sees them (spaces stripped). */
function sections(text: string): string[] {
  return text.split('\n').map((l) => l.replace(/\s+/g, '')).filter((l) => l.startsWith('[')).map((l) => l.toLowerCase());
}

/** Which cfgs are classifiers, and why the others are not. */
export function classify(text: string): { classifier: boolean; why: string } {
  const s = sections(text);
  const detection = s.find((x) => DETECTION.includes(x));
  if (detection) return { classifier: false, why: `detector (${detection})` };
  const last = s[s.length - 1];
  if (!LOSS.includes(last)) return { classifier: false, why: `ends in ${last ?? 'nothing'}, not a loss` };
  return { classifier: true, why: '' };
}

/** darknet's note for a key it did not find ("type: Using default 'sse'"), not part of the table. */
const DEFAULT_NOTE = /^\S+: Using default /;

/**
 * The layer rows of darknet's table (`%5d ` + describe), from its stderr. darknet prints
 * the index before parsing the section, so a default-value note can sit between the index
 * and the layer's line: the index is joined to the next line that is not such a note.
 */
export function darknetRows(stderr: string): string[] {
  const rows: string[] = [];
  let pending: string | null = null;
  for (const line of stderr.split('\n')) {
    const m = /^( {0,4}\d+ )(.*)$/.exec(line);
    if (m) {
      if (DEFAULT_NOTE.test(m[2])) pending = m[1];
      else rows.push(line.trimEnd());
    } else if (pending !== null && !DEFAULT_NOTE.test(line)) {
      rows.push((pending + line).trimEnd());
      pending = null;
    }
  }
  return rows;
}

function ourRows(spec: NetworkSpec): string[] {
  return spec.layers.map((l) => `${String(l.index).padStart(5)} ${l.describe}`.trimEnd());
}

/** darknet's table rows and its operation count (`Floating Point Operations: N` on stdout), or why not. */
function runDarknet(binary: string, root: string, cfg: string): { rows: string[]; ops: number } | string {
  const r = spawnSync(binary, ['ops', path.join('cfg', cfg)], { cwd: root, encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20 });
  if (r.error) return `darknet failed: ${r.error.message}`;
  const ops = /Floating Point Operations: (\d+)\n/.exec(r.stdout);
  if (!ops) return `darknet printed no operation count (exit ${r.status})`;
  return { rows: darknetRows(r.stderr), ops: Number(ops[1]) };
}

function activationFloats(spec: NetworkSpec): number {
  return spec.layers.reduce((s, l) => s + 2 * l.outputs, spec.net.inputs);
}

function runOnce(spec: NetworkSpec, k: Kernels): string {
  const net = new Network(withBatch(spec, 1), k);
  try {
    const x = new Float32Array(spec.net.inputs).map((_, i) => Math.sin(i));
    k.upload(net.input, x);
    const truth = new Float32Array(net.outputs);
    truth[0] = 1;
    k.upload(net.truth, truth);
    const start = Date.now();
    const cost = net.forward(true, true);
    net.backward();
    const out = k.read(net.output);
    const finite = out.every(Number.isFinite) && Number.isFinite(cost);
    return `${finite ? 'yes' : 'NON-FINITE'} (${((Date.now() - start) / 1000).toFixed(1)} s)`;
  } finally {
    net.dispose();
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const dir = path.resolve(args.cfgs);
  const root = path.dirname(dir);
  const names = (args.only ?? fs.readdirSync(dir).filter((f) => f.endsWith('.cfg'))).sort();
  const rows: string[][] = [['cfg', 'classifier', 'loads', 'table = darknet', 'forward+backward', 'missing / note']];
  const cwd = process.cwd();
  const k = await createKernels(args.backend);
  for (const name of names) {
    const text = fs.readFileSync(path.join(dir, name), 'utf8');
    const kind = classify(text);
    let spec: NetworkSpec;
    process.chdir(root); // tree= paths are relative to darknet's folder
    try {
      spec = readCfg(path.join(dir, name));
    } catch (e) {
      rows.push([name, kind.classifier ? 'yes' : `no: ${kind.why}`, 'no', '', '', (e as Error).message.split('\n')[0].replace(/; known: .*/, '')]);
      continue;
    } finally {
      process.chdir(cwd);
    }
    let table = '(no --darknet)';
    if (args.darknet) {
      const theirs = runDarknet(path.resolve(args.darknet), root, name);
      if (typeof theirs === 'string') table = theirs;
      else {
        const ours = ourRows(spec);
        const bad = ours.findIndex((r, i) => r !== theirs.rows[i]);
        const flops = spec.layers.reduce((sum, l) => sum + l.flops, 0);
        table = ours.length !== theirs.rows.length
          ? `no (${ours.length} rows, darknet ${theirs.rows.length})`
          : bad >= 0 ? `no (row ${bad}: '${ours[bad].trim()}' vs '${theirs.rows[bad].trim()}')`
            : flops !== theirs.ops ? `rows yes, total no (${flops} vs darknet ${theirs.ops} FLOPs)`
              : `yes (${ours.length} rows, ${(flops / 1e9).toFixed(3)} BFLOPs)`;
      }
    }
    let run: string;
    const floats = activationFloats(spec);
    if (!kind.classifier) run = '(not a classifier)';
    else if (floats > args.maxInputs) run = `skipped (${(floats / 1e6).toFixed(0)}M floats > --max-inputs)`;
    else {
      try {
        run = runOnce(spec, k);
      } catch (e) {
        run = `FAILED: ${(e as Error).message.split('\n')[0]}`;
      }
    }
    rows.push([name, kind.classifier ? 'yes' : `no: ${kind.why}`, 'yes', table, run, spec.warnings.length ? `${spec.warnings.length} warning(s): ${spec.warnings[0]}` : '']);
    process.stderr.write(`${name}: ${table}; ${run}\n`);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) => `| ${r.map((v, c) => v.padEnd(widths[c])).join(' | ')} |`;
  console.log(line(rows[0]));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows.slice(1)) console.log(line(r));
  k.dispose();
}

if (require.main === module) {
  main().catch((e) => {
    console.error(`darknet-zoo: ${(e as Error).message}`);
    process.exit(1);
  });
}
