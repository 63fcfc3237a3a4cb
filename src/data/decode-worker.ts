/**
 * The decode worker's thread (started by DecodePool): decodes the files of each request
 * with loadImage, the same code the main thread runs, and sends the bytes back
 * (transferred, not copied). Requests are answered in order; `close` ends the thread
 * after the requests before it.
 */
import { parentPort } from 'worker_threads';
import { decodeOutcome, packReply, type DecodeRequest } from './decode-pool';

const port = parentPort;
if (!port) throw new Error('decode-worker runs in a worker thread (DecodePool starts it)');
let queue = Promise.resolve();
port.on('message', (m: DecodeRequest | 'close') => {
  queue = queue.then(async () => {
    if (m === 'close') {
      port.close();
      return;
    }
    // All files at once: the pngjs path is synchronous anyway, sharp's overlap in its thread pool.
    const outcomes = await Promise.all(m.files.map((f) => decodeOutcome(f, m)));
    const reply = packReply(m.id, outcomes);
    port.postMessage(reply, [reply.bytes.buffer as ArrayBuffer]);
  });
});
