import * as path from 'path';
import { parseCfg, readCfg } from '../../src/cfg/parser';
import { Network } from '../../src/engine/network';
import { ReferenceKernels } from '../../src/kernels/reference';

// Sections and keys of darknet's cfg folder this engine refuses (with the line), and the
// small fixture nets holding every added layer type running forward, backward and update.
const NET = '[net]\nheight=8\nwidth=8\nchannels=2\n';
const DIR = path.join(__dirname, '..', 'fixtures', 'darknet-tables');

describe('refused, never warned about', () => {
  test.each(['rnn', 'gru', 'lstm', 'crnn'])('[%s] is named as an out-of-scope recurrent layer, at its line', (name) => {
    expect(() => parseCfg(`${NET}[convolutional]\nfilters=2\n[${name}]\noutput=4\n`, 'r.cfg'))
      .toThrow(`r.cfg:7: [${name}] is a recurrent layer: recurrent layers (rnn, gru, lstm, crnn) are out of scope for darknet-ts`);
  });

  test.each(['binary', 'xnor', 'flipped'])('convolutional %s=1 is refused at its line; =0 loads', (key) => {
    expect(() => parseCfg(`${NET}[convolutional]\nfilters=2\n${key}=1\n`, 'c.cfg')).toThrow(`c.cfg:7: convolutional ${key}=1 is not supported`);
    expect(parseCfg(`${NET}[convolutional]\nfilters=2\n${key}=0\n`, 'c.cfg').warnings).toEqual([]);
  });
});

describe.each(['image-layers', 'flat-layers', 'strided-layers', 'weights-order'])('%s.cfg runs', (name) => {
  test('forward (training, with a truth), backward and update give finite numbers', () => {
    const spec = readCfg(path.join(DIR, `${name}.cfg`));
    const k = new ReferenceKernels();
    const net = new Network(spec, k);
    const x = Array.from({ length: net.batch * spec.net.inputs }, (_, i) => Math.sin(i * 0.37));
    const truth = new Array(net.batch * net.outputs).fill(0);
    for (let b = 0; b < net.batch; b++) truth[b * net.outputs + (b % net.outputs)] = 1;
    const loss = net.trainBatch(x, truth);
    expect(Number.isFinite(loss)).toBe(true);
    const out = net.predict(x.slice(0, net.batch * spec.net.inputs));
    expect(out.length).toBe(net.batch * net.outputs);
    expect(Array.from(out).every(Number.isFinite)).toBe(true);
    net.dispose();
  });
});
