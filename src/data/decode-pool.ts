/**
 * Image decoding in worker threads, so that the main thread (the kernels) never waits on
 * a PNG. Each worker runs loadImage, the main thread's own decoder, and the bytes come
 * back transferred. Workers start on the first decode, are unref()ed while idle (an
 * idle pool never keeps a process or a test run alive), end after 10 s idle and start
 * again when needed, and end for good with close().
 */
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { DarknetError } from '../errors';
import { messageExcerpt as excerpt } from '../errors';
// NOTE: images.ts loads sharp on the main thread before any worker does; sharp's native
// libraries must outlive every worker that uses them (sharp issue 2263).
import { ImageError, loadImage, type Decoder } from './images';

/** The net's input size and how an image is fitted to it. */
export interface DecodeShape {
  w: number;
  h: number;
  c: 1 | 3;
  /** default 'cover', as loadImage */
  fit?: 'fill' | 'cover';
}

export interface DecodeRequest {
  id: number;
  files: string[];
  w: number;
  h: number;
  c: 1 | 3;
  fit: 'fill' | 'cover';
  decoder: Decoder;
}

/** An image's bytes `[c, h, w]`, or why it cannot be loaded (a reason without its path). */
export type DecodeOutcome = { data: Uint8Array } | { problem: string };

/**
 * A reply as it crosses threads: the images' bytes one after another in one buffer (one
 * transfer and a cheap clone; a view per image cost 85 us a message).
 */
export interface DecodeReply {
  id: number;
  bytes: Uint8Array;
  /** per file of the request, in order: its byte length in `bytes`, or why it cannot be loaded */
  parts: Array<number | string>;
}

export function packReply(id: number, outcomes: readonly DecodeOutcome[]): DecodeReply {
  const bytes = new Uint8Array(outcomes.reduce((n, o) => n + ('data' in o ? o.data.length : 0), 0));
  let offset = 0;
  const parts = outcomes.map((o) => {
    if (!('data' in o)) return o.problem;
    bytes.set(o.data, offset);
    offset += o.data.length;
    return o.data.length;
  });
  return { id, bytes, parts };
}

/** The outcomes of a reply; each image's bytes are a view into the reply's buffer. */
export function unpackReply(reply: DecodeReply): DecodeOutcome[] {
  let offset = 0;
  return reply.parts.map((p) => {
    if (typeof p === 'string') return { problem: p };
    offset += p;
    return { data: reply.bytes.subarray(offset - p, offset) };
  });
}

/** Workers a pool starts unless told otherwise: min(2, cores); the kernels keep the main thread busy. */
export const DEFAULT_DECODE_WORKERS = Math.min(2, os.availableParallelism());

/** How long close() lets a worker finish its requests before it is terminated. */
const CLOSE_GRACE_MS = 5000;
/** A worker idle this long ends (and starts again when needed): a pool nobody closed holds no threads for long. */
const IDLE_MS = 10000;

/** loadImage's answer as an outcome: an ImageError gives its reason, anything else a short excerpt. */
export async function decodeOutcome(file: string, r: Omit<DecodeRequest, 'id' | 'files'>): Promise<DecodeOutcome> {
  try {
    return { data: (await loadImage(file, r.w, r.h, r.c, r.fit, r.decoder)).data };
  } catch (e) {
    return { problem: e instanceof ImageError ? e.reason : `cannot load image (${excerpt(e instanceof Error ? e.message : String(e))})` };
  }
}

function decodeHere(r: DecodeRequest): Promise<DecodeOutcome[]> {
  return Promise.all(r.files.map((f) => decodeOutcome(f, r)));
}

/**
 * Run from the TypeScript sources (jest, ts-node) there is no decode-worker.js: the
 * worker compiles the .ts files it requires with typescript's transpileModule, keeping
 * the output in a temp folder by content hash (loading typescript costs a second).
 */
const TS_BOOT = `
const { workerData, threadId } = require('worker_threads');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const dir = path.join(os.tmpdir(), 'darknet-ts-worker-js');
let ts;
require.extensions['.ts'] = (module, file) => {
  const source = fs.readFileSync(file, 'utf8');
  const cached = path.join(dir, crypto.createHash('sha1').update(file + '\\0' + source).digest('hex') + '.js');
  let js;
  try {
    js = fs.readFileSync(cached, 'utf8');
  } catch {
    ts ??= require(workerData.typescript);
    const options = { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true };
    js = ts.transpileModule(source, { fileName: file, compilerOptions: options }).outputText;
    const partial = cached + '.' + process.pid + '.' + threadId;
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(partial, js);
    fs.renameSync(partial, cached);
  }
  module._compile(js, file);
};
require(workerData.entry);
`;

function startWorker(): Worker {
  const entry = path.join(__dirname, `decode-worker${path.extname(__filename)}`);
  if (entry.endsWith('.js')) return new Worker(entry);
  return new Worker(TS_BOOT, { eval: true, workerData: { entry, typescript: require.resolve('typescript') } });
}

interface Slot {
  worker: Worker;
  /** requests sent and not yet answered, by id */
  pending: Map<number, { request: DecodeRequest; resolve: (outcomes: DecodeOutcome[]) => void }>;
  /** images in those requests: a new request goes to the slot with the fewest */
  images: number;
  /** ends the worker when it stays idle (unref()ed) */
  idle?: NodeJS.Timeout;
  /** whether it ever answered: one that fails before that cannot start here */
  answered: boolean;
}

/**
 * A pool of decode workers.
 * @example
 * const pool = new DecodePool();
 * const [first] = await pool.decode(['data/mnist/train/00000_c5.png'], { w: 28, h: 28, c: 1 });
 * await pool.close();
 */
export class DecodePool {
  readonly size: number;
  readonly decoder: Decoder;
  private readonly slots: Array<Slot | undefined>;
  private readonly idleMs: number;
  private nextId = 0;
  private closing: Promise<void> | null = null;
  /** a worker failed to start: everything is decoded on the main thread */
  private cannotStart = false;

  constructor(options: { workers?: number; decoder?: Decoder; idleMs?: number } = {}) {
    this.size = options.workers ?? DEFAULT_DECODE_WORKERS;
    if (!Number.isInteger(this.size) || this.size < 1) throw new DarknetError(`a decode pool needs at least 1 worker, not ${this.size}`);
    this.decoder = options.decoder ?? 'pngjs';
    this.idleMs = options.idleMs ?? IDLE_MS;
    this.slots = new Array(this.size).fill(undefined);
  }

  /** Worker threads running now (they start on the first decode). */
  get running(): number {
    return this.slots.filter((slot) => slot).length;
  }

  /** True once close() was called; later decodes run on the main thread. */
  get closed(): boolean {
    return this.closing !== null;
  }

  /**
   * Decodes `files` in one worker (the least busy), outcomes in the order of `files`.
   * Never rejects: an image that cannot be loaded is a `problem` outcome.
   */
  decode(files: readonly string[], shape: DecodeShape): Promise<DecodeOutcome[]> {
    const request: DecodeRequest = { id: this.nextId++, files: [...files], w: shape.w, h: shape.h, c: shape.c, fit: shape.fit ?? 'cover', decoder: this.decoder };
    if (this.closing || this.cannotStart || files.length === 0) return decodeHere(request);
    const slot = this.leastBusy();
    return new Promise((resolve) => {
      // Referenced while it owes an answer, so that a process awaiting it does not exit.
      if (slot.pending.size === 0) slot.worker.ref();
      clearTimeout(slot.idle);
      slot.pending.set(request.id, { request, resolve });
      slot.images += request.files.length;
      slot.worker.postMessage(request);
    });
  }

  /** Ends the workers after the requests already sent (terminated if they take over 5 s). */
  close(): Promise<void> {
    this.closing ??= Promise.all(this.slots.map((slot) => slot && stop(slot))).then(() => undefined);
    return this.closing;
  }

  private leastBusy(): Slot {
    let best: Slot | undefined;
    for (let k = 0; k < this.size; k++) {
      const slot = this.slots[k] ?? this.spawn(k);
      if (!best || slot.images < best.images) best = slot;
    }
    return best!;
  }

  private spawn(k: number): Slot {
    const worker = startWorker();
    const slot: Slot = { worker, pending: new Map(), images: 0, answered: false };
    this.slots[k] = slot;
    worker.on('message', (reply: DecodeReply) => {
      const job = slot.pending.get(reply.id);
      if (!job) return;
      slot.answered = true;
      slot.pending.delete(reply.id);
      slot.images -= job.request.files.length;
      if (slot.pending.size === 0) this.idle(k, slot);
      job.resolve(unpackReply(reply));
    });
    // NOTE: a worker that dies (out of memory, a crash in a decoder) loses its requests;
    // they are decoded here instead, so every image still gets its own outcome.
    const lost = () => {
      if (this.slots[k] === slot) this.slots[k] = undefined;
      for (const job of slot.pending.values()) void decodeHere(job.request).then(job.resolve);
      slot.pending.clear();
      slot.images = 0;
    };
    worker.on('error', () => {
      // One that fails before its first answer fails to start (say, no decode-worker.js): the next would too.
      if (!slot.answered) this.cannotStart = true;
      lost();
    });
    worker.on('exit', lost);
    // NOTE: after the listeners: adding a 'message' listener refs the worker's port again.
    this.idle(k, slot);
    return slot;
  }

  private idle(k: number, slot: Slot): void {
    slot.worker.unref();
    slot.idle = setTimeout(() => {
      if (this.slots[k] !== slot || slot.pending.size > 0) return;
      this.slots[k] = undefined;
      void stop(slot);
    }, this.idleMs);
    slot.idle.unref();
  }
}

function stop(slot: Slot): Promise<void> {
  clearTimeout(slot.idle);
  return new Promise((resolve) => {
    const timer = setTimeout(() => void slot.worker.terminate(), CLOSE_GRACE_MS);
    slot.worker.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    slot.worker.ref();
    slot.worker.postMessage('close');
  });
}
