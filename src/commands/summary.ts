import { readCfg } from '../cfg/parser';
import { compareColumns, formatSummary, weightsColumns } from '../report/summary';
import { loadWeights } from './load';
import { verb } from './verb';

export const summary = verb({
  command: 'summary <cfg> [weights]',
  describe: "print darknet's layer table with parameter counts and BFLOPs",
  builder: (y) =>
    y
      .positional('cfg', { type: 'string', demandOption: true, describe: 'darknet .cfg file' })
      .positional('weights', { type: 'string', describe: 'darknet .weights file' })
      .option('compare', { type: 'string', describe: 'another cfg with the same layers (e.g. the model before prune channels): filters old -> new per layer' }),
  run(args, io) {
    const spec = readCfg(args.cfg);
    for (const w of spec.warnings) io.err(`warning: ${w}\n`);
    const columns = args.weights !== undefined ? weightsColumns(spec, loadWeights(args.weights, spec)) : [];
    if (args.compare !== undefined) columns.unshift(...compareColumns(readCfg(args.compare), spec));
    io.out(formatSummary(spec, columns));
  },
});
