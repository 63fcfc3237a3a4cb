import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { WasmExports, WasmMemory, WasmModule } from './api';

/**
 * A pool of worker threads that run exported functions of one WebAssembly module over
 * one shared memory, with a synchronous API: `run` publishes a job, the main thread works
 * on it too, and `run` returns once every thread that joined has left.
 *
 * A job function is called as fn(tid, counter, ...args) and claims work units with an
 * atomic add on the Int32 at `counter` until none are left (dynamic scheduling): on a
 * busy machine a worker that wakes late finds less or nothing to do, and the main thread
 * never waits for a worker that has not started.
 *
 * Protocol, over a control block of Int32s in the shared memory:
 *   STATE packs (job generation << 8) | CLOSED | active workers. The main thread writes
 *   the function, arguments and counter = 0, opens the job (STATE = gen << 8), bumps GEN
 *   and notifies. A worker wakes on GEN and joins by a compare-exchange that succeeds only
 *   while STATE still shows that generation open; it leaves by decrementing. When the main
 *   thread runs out of units it sets CLOSED and waits until no worker is active.
 * Both sides poll briefly before sleeping in Atomics.wait (a wake-up through the kernel
 * costs tens of microseconds).
 *
 * Workers are unref()ed: they never keep a process alive, so one that forgets `dispose`
 * still exits. `dispose` terminates them.
 *
 * @example
 *   const pool = await WorkerPool.start(module, memory, ctrlOffset, 2, ['gemmJob'], exports);
 *   pool.run(0, [nt, transA, transB, M, ...]); // gemmJob(tid, counter, nt, ...) on every thread
 *   pool.dispose();
 */

/** Int32 slots of the control block (CTRL_BYTES long, 8-byte aligned). */
const GEN = 0;
const STATE = 1;
const FN = 2;
const NARGS = 3;
const ERROR = 4;
const STOP = 5;
/** the job's unit counter; its byte address is passed to the job */
const COUNTER = 6;
/** units done by workers, over the pool's life (jobs return their unit counts) */
const WORKER_UNITS = 7;
/** workers that joined the current job */
const JOINED = 8;
const CLOSED = 0x80;
const ACTIVE = 0x7f;
/** Byte offset of the Float64 argument slots within the control block. */
const ARGS_AT = 64;
export const MAX_ARGS = 32;
export const CTRL_BYTES = ARGS_AT + MAX_ARGS * 8;

/** Polls of a shared counter before sleeping on it (a few microseconds). */
const SPIN = 2000;

// The worker's whole program. NOTE: a string (eval: true), so that it runs the same from
// ts-jest's sources and from tsc's dist/ without a separate worker file to locate.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { module, memory, ctrl, tid, names, errors } = workerData;
const instance = new WebAssembly.Instance(module, { env: { memory } });
const fns = names.map((n) => instance.exports[n]);
const i32 = new Int32Array(memory.buffer, ctrl, ${ARGS_AT / 4});
const f64 = new Float64Array(memory.buffer, ctrl + ${ARGS_AT}, ${MAX_ARGS});
const counter = ctrl + ${COUNTER * 4};
parentPort.postMessage('ready');
let seen = 0;
for (;;) {
  let spins = 0;
  while (Atomics.load(i32, ${GEN}) === seen) {
    if (++spins > ${SPIN}) Atomics.wait(i32, ${GEN}, seen);
  }
  seen = Atomics.load(i32, ${GEN});
  if (Atomics.load(i32, ${STOP}) !== 0) break;
  let state = Atomics.load(i32, ${STATE});
  let joined = false;
  while ((state >>> 8) === seen && (state & ${CLOSED}) === 0) {
    const prev = Atomics.compareExchange(i32, ${STATE}, state, state + 1);
    if (prev === state) { joined = true; break; }
    state = prev;
  }
  if (!joined) continue;
  Atomics.add(i32, ${JOINED}, 1);
  Atomics.notify(i32, ${JOINED});
  const args = [tid, counter];
  for (let i = 0; i < i32[${NARGS}]; i++) args.push(f64[i]);
  try {
    Atomics.add(i32, ${WORKER_UNITS}, fns[i32[${FN}]].apply(null, args) | 0);
  } catch (e) {
    Atomics.store(i32, ${ERROR}, 1);
    errors.postMessage({ error: 'worker ' + tid + ': ' + (e && e.stack || e) });
  }
  const left = Atomics.sub(i32, ${STATE}, 1) - 1;
  if ((left & ${CLOSED}) !== 0 && (left & ${ACTIVE}) === 0) Atomics.notify(i32, ${STATE});
}
`;

export class WorkerPool {
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private stopped = false;
  /** workers whose thread has not exited yet */
  private running: number;
  private generation = 0;
  /** jobs dispatched to the workers */
  private jobs = 0;
  /**
   * The main thread starts on a job only once every worker has joined it: slower on a
   * busy machine, but every thread then takes part (for tests and scaling measurements).
   */
  waitForWorkers = false;

  private constructor(
    private readonly workers: Worker[],
    private readonly ports: MessagePort[],
    memory: WasmMemory,
    private readonly ctrl: number,
    /** the main thread's instance's functions, in `names` order */
    private readonly fns: ((...args: number[]) => unknown)[],
  ) {
    this.i32 = new Int32Array(memory.buffer, ctrl, ARGS_AT / 4);
    this.f64 = new Float64Array(memory.buffer, ctrl + ARGS_AT, MAX_ARGS);
    this.running = workers.length;
    for (const w of workers) w.once('exit', () => this.running--);
  }

  /** Threads in all, the main one included. */
  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * Starts threads - 1 workers, each instantiating `module` over `memory`, and resolves
   * once all are ready. `ctrl` is the byte offset of CTRL_BYTES reserved in the memory.
   */
  static async start(
    module: WasmModule, memory: WasmMemory, ctrl: number, threads: number,
    names: string[], mainExports: WasmExports,
  ): Promise<WorkerPool> {
    const fns = names.map((n) => {
      const fn = mainExports[n];
      if (typeof fn !== 'function') throw new Error(`wasm-simd: the module exports no function ${n}`);
      return fn as (...args: number[]) => unknown;
    });
    const workers: Worker[] = [];
    const ports: MessagePort[] = [];
    const ready: Promise<void>[] = [];
    for (let tid = 1; tid < threads; tid++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { module, memory, ctrl, tid, names, errors: port2 },
        transferList: [port2],
      });
      // NOTE: unref'd, so a process that forgets dispose() still exits
      worker.unref();
      port1.unref();
      workers.push(worker);
      ports.push(port1);
      ready.push(new Promise((resolve, reject) => {
        worker.once('message', () => resolve());
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`wasm-simd worker ${tid} exited (${code}) before it was ready`)));
      }));
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      for (const w of workers) void w.terminate();
      throw e;
    }
    for (const w of workers) w.removeAllListeners('exit');
    return new WorkerPool(workers, ports, memory, ctrl, fns);
  }

  /**
   * Runs the job fn(tid, counter, ...args) on the main thread and on every worker that
   * joins in time, and returns when all of them have finished. With `alone`, only the
   * main thread runs it (for jobs too small to be worth a wake-up).
   */
  run(fn: number, args: number[], alone = false): void {
    if (this.stopped) throw new Error('wasm-simd: the worker pool was disposed');
    if (args.length > MAX_ARGS) throw new Error(`wasm-simd: ${args.length} arguments, at most ${MAX_ARGS}`);
    const { i32, f64 } = this;
    const counter = this.ctrl + COUNTER * 4;
    Atomics.store(i32, COUNTER, 0);
    if (alone || this.workers.length === 0) {
      this.fns[fn](0, counter, ...args);
      return;
    }
    for (let i = 0; i < args.length; i++) f64[i] = args[i];
    i32[FN] = fn;
    i32[NARGS] = args.length;
    i32[ERROR] = 0;
    i32[JOINED] = 0;
    this.jobs++;
    this.generation = (this.generation + 1) & 0xffffff;
    Atomics.store(i32, STATE, this.generation << 8);
    Atomics.store(i32, GEN, this.generation);
    Atomics.notify(i32, GEN);
    try {
      if (this.waitForWorkers) {
        for (let j = Atomics.load(i32, JOINED); j < this.workers.length; j = Atomics.load(i32, JOINED)) Atomics.wait(i32, JOINED, j);
      }
      this.fns[fn](0, counter, ...args);
    } finally {
      // close the job, then wait for the workers in it (even when the main share threw:
      // they are still writing to memory)
      let state = Atomics.or(i32, STATE, CLOSED) | CLOSED;
      let spins = 0;
      while ((state & ACTIVE) !== 0) {
        if (++spins > SPIN) Atomics.wait(i32, STATE, state);
        state = Atomics.load(i32, STATE);
      }
    }
    if (Atomics.load(i32, ERROR) !== 0) {
      const messages = this.ports.map((p) => receiveMessageOnPort(p)?.message?.error).filter(Boolean);
      throw new Error(`wasm-simd: ${messages.join('; ') || 'a worker failed'}`);
    }
  }

  /** Jobs handed to the workers, and the work units the workers did, so far. */
  stats(): { jobs: number; workerUnits: number } {
    return { jobs: this.jobs, workerUnits: Atomics.load(this.i32, WORKER_UNITS) };
  }

  /** Workers whose thread is still running (it exits soon after `dispose`). */
  liveWorkers(): number {
    return this.running;
  }

  /** Stops and terminates the workers (liveWorkers() reaches 0 once their threads exit). */
  dispose(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.workers.length === 0) return;
    Atomics.store(this.i32, STOP, 1);
    Atomics.add(this.i32, GEN, 1);
    Atomics.notify(this.i32, GEN);
    for (const w of this.workers) void w.terminate();
    for (const p of this.ports) p.close();
  }
}
