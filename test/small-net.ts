/**
 * The [net] section of the tiny nets the command tests train in seconds on a few hundred
 * real MNIST PNGs: batch 16 at 28 x 28 x 1, poly from 0.05 to `maxBatches`.
 */
export function smallNet(maxBatches: number): string {
  return `
[net]
batch=16
height=28
width=28
channels=1
min_crop=28
max_crop=28
learning_rate=0.05
momentum=0.9
decay=0.0005
policy=poly
power=1
max_batches=${maxBatches}
`;
}

/**
 * The tiny conv net the command tests train (conv 6 5x5 / 2 -> connected 10 -> softmax),
 * with `max_batches` to set.
 */
export function smallCfg(maxBatches = 30): string {
  return `${smallNet(maxBatches)}
[convolutional]
filters=6
size=5
stride=2
pad=0
activation=relu

[connected]
output=10
activation=linear

[softmax]
`;
}

/** A residual block of 8 channels: conv 3x3 (leaky), conv 1x1 (linear), [shortcut] from=-3. */
const BLOCK_8 = `[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
pad=0
activation=linear

[shortcut]
from=-3
activation=linear
`;

/**
 * conv 8 5x5/2 on MNIST, then two residual blocks (conv 3x3, conv 1x1, [shortcut]) and a
 * head (avgpool, connected 10): layers 1-3 and 4-6 are the blocks `--layers` may remove.
 */
export function smallResidualCfg(maxBatches = 40): string {
  return `${smallNet(maxBatches)}
[convolutional]
batch_normalize=1
filters=8
size=5
stride=2
pad=0
activation=leaky

# block A
${BLOCK_8}
# block B
${BLOCK_8}
[avgpool]

[connected]
output=10
activation=linear

[softmax]
`;
}
