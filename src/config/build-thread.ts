/**
 * Builds a zone set off the event loop, in a worker thread.
 *
 * Parsing YAML is the cost of a reload: a zone of 1,000 services (130 KB) takes 150-250 ms to
 * build and one of 5,000 about a second, nearly all of it in the yaml library's parser. On the
 * event loop that is a pause of DNS in a one-process server (`--workers 1`, and `auto` on one CPU)
 * and, with workers, of the control process: no health round measured, no admin request answered,
 * for every reload and every admin write. Here a worker thread parses and builds, and the set comes
 * back as `v8.serialize` bytes (the form DNS workers already receive it in, Buffers kept), which
 * take 6-10 ms per 1,000 services to read: in parts of at most 500 entries, read one per turn of
 * the event loop (set-parts.ts), so a big set does not hold DNS for the whole read.
 *
 * The thread is started on the first build and ended after IDLE_MS without one, so a server that
 * is not being changed holds no second V8 isolate. Builds go one at a time (the store's queue
 * already orders them). `serial: auto` is decided in the thread from a copy of the serial book's
 * entries and the clock; the serials it handed out come back to be committed (SerialBook.adopt)
 * only if the set is taken.
 */
import { Worker } from 'node:worker_threads'
import type { EditOp, EditZone } from '../admin/edits.js'
import { ApiError, type ErrorDetail } from '../admin/errors.js'
import { ConfigError, type ConfigIssue, type ErrorCode } from '../errors.js'
import type { ZoneSet } from '../model/types.js'
import type { SerialEntry } from '../store/serials.js'
import { OnDiskError } from '../store/zone-editor.js'
import type { ZoneSource } from './load.js'
import { readInParts } from './set-parts.js'

/** What the thread is asked: one set's build. */
export interface BuildRequest {
  id: number
  sources: ZoneSource[]
  generation: number
  /** The serial book's entries when the build was asked for, and its clock (Unix seconds). */
  serials: [string, SerialEntry][]
  now: number
  /** An admin API change of one of `sources` (by file name), made in the thread before the build. */
  edit?: { file: string; op: EditOp; zone: EditZone }
}

/** What it answers: the set as v8.serialize parts (set-parts.ts) and the serials it gave, or the issues, or an error. */
export type BuildReply =
  | { id: number; ok: true; parts: ArrayBuffer[]; serials: [string, SerialEntry][]; text?: string; reused?: boolean }
  | { id: number; ok: false; issues: ConfigIssue[] }
  | { id: number; ok: false; error: string }
  /** The edit refused (a 404, a 409, a 400 of the API): as the route would have thrown it. */
  | { id: number; ok: false; refused: { code: ErrorCode; status: number; message: string; details: ErrorDetail[] } }
  /** The edited file's problem, not the request's: not YAML on disk, or a failure making the change (an alias bomb). */
  | { id: number; ok: false; onDisk: string; yaml: boolean }

/** A thread unused this long is ended (the next build starts another, about 0.2 s). */
export const IDLE_MS = 30_000

export interface ThreadedBuild {
  set: ZoneSet
  /** The serials given to zones whose content changed, for SerialBook.adopt once the set is taken. */
  serials: [string, SerialEntry][]
  /** With an edit: the edited file's new text (the set is built with it). */
  text?: string
  /** With an edit: whether it was made on the thread's kept parse of the file's text (build-worker.ts), not a new parse. */
  reused?: boolean
}

/**
 * The thread died during a build (out of memory on a huge zone, or killed). Not retried on the
 * event loop: what killed the thread would take the server down with it there.
 */
export class BuildThreadStopped extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'BuildThreadStopped'
  }
}

export class ZoneSetBuilder {
  private worker: Worker | undefined
  private idle: NodeJS.Timeout | undefined
  private nextId = 1
  private pending = new Map<number, { worker: Worker; resolve: (b: ThreadedBuild) => void; reject: (err: Error) => void }>()
  private preparer: ((set: ZoneSet) => Promise<void>) | undefined

  constructor(
    private readonly idleMs = IDLE_MS,
    /** The thread's V8 heap limits (tests make one small enough to run out); default: V8's own. */
    private readonly resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number },
  ) {}

  /**
   * Work to do on every set read back from the thread before build() hands it over: in a one-process
   * server, the answer cache's indexes of it, made in steps between which DNS is answered
   * (DnsHandler.prepareNext). It must not throw (a set it failed to prepare is still the set).
   */
  prepareWith(preparer: (set: ZoneSet) => Promise<void>): void {
    this.preparer = preparer
  }

  /** Builds the set of `sources` in the thread; rejects with the ConfigError buildZoneSet would throw. */
  build(sources: ZoneSource[], generation: number, serials: Iterable<[string, SerialEntry]>, now: number, edit?: BuildRequest['edit']): Promise<ThreadedBuild> {
    const worker = this.thread()
    clearTimeout(this.idle)
    const id = this.nextId++
    const request: BuildRequest = { id, sources, generation, serials: [...serials], now, ...(edit ? { edit } : {}) }
    return new Promise<ThreadedBuild>((resolve, reject) => {
      this.pending.set(id, { worker, resolve, reject })
      worker.ref()
      worker.postMessage(request)
    })
  }

  /** Ends the thread (builds in flight are rejected). */
  async close(): Promise<void> {
    clearTimeout(this.idle)
    const worker = this.worker
    this.worker = undefined
    if (worker) await worker.terminate()
  }

  /** Whether a thread is running now (tests). */
  get running(): boolean {
    return this.worker !== undefined
  }

  private thread(): Worker {
    if (this.worker) return this.worker
    // No node options of this process's (`--input-type`, `--cpu-prof`...): V8's flags hold for every thread anyway.
    const worker = new Worker(new URL('./build-worker.js', import.meta.url), { execArgv: [], ...(this.resourceLimits ? { resourceLimits: this.resourceLimits } : {}) })
    this.worker = worker
    worker.on('message', (reply: BuildReply) => {
      const p = this.pending.get(reply.id)
      if (!p) return
      this.pending.delete(reply.id)
      this.settled(worker)
      if (reply.ok) {
        const rest = reply.text !== undefined ? { text: reply.text, reused: reply.reused === true } : {}
        const prepare = this.preparer
        readInParts(reply.parts.map((b) => new Uint8Array(b)))
          .then(async (set) => {
            if (prepare) await prepare(set)
            return set
          })
          .then((set) => p.resolve({ set, serials: reply.serials, ...rest }), p.reject)
      } else if ('issues' in reply) p.reject(new ConfigError(reply.issues))
      else if ('refused' in reply) p.reject(new ApiError(reply.refused.code, reply.refused.status, reply.refused.message, reply.refused.details))
      else if ('onDisk' in reply) p.reject(new OnDiskError(reply.onDisk, reply.yaml))
      else p.reject(new Error(`building the zone set failed: ${reply.error}`))
    })
    // Its builds in flight fail with it (an idle thread ended by close() has none; a newer thread's are its own).
    const fail = (err: Error): void => {
      if (this.worker === worker) this.worker = undefined
      for (const [id, p] of this.pending) {
        if (p.worker !== worker) continue
        this.pending.delete(id)
        p.reject(new BuildThreadStopped(`the zone set's build thread stopped: ${err.message}`))
      }
    }
    worker.on('error', fail)
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)))
    return worker
  }

  /** A build is over: with none left, the thread no longer holds the process open, and ends when idle. */
  private settled(worker: Worker): void {
    if ([...this.pending.values()].some((p) => p.worker === worker)) return
    worker.unref()
    clearTimeout(this.idle)
    this.idle = setTimeout(() => {
      if (this.worker === worker) void this.close()
    }, this.idleMs)
    this.idle.unref()
  }
}
