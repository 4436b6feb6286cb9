/**
 * The file-backed config store: `zones/*.yaml` loaded as one set, reloaded when a file changes
 * (fs.watch, debounced) or on SIGHUP (wired in cli.ts). A set with any error is rejected as a whole
 * and the last good set keeps serving. A zone file some process holds open for writing (written in
 * place: `cp`, `curl -o`) is not read until it is closed (writers.ts), so half of one is never served. An etcd-backed store will implement the same interface.
 *
 * Edits (the admin API) take the same path, on the same queue as reloads: the whole set is rebuilt
 * from the files on disk with the edited file's new text, validated, and only then is the file
 * written (atomically) and the set swapped in. A reload that finds the files as the current set
 * was built from (the watcher seeing the store's own write) changes nothing.
 */
import { constants, lstatSync, readdirSync, realpathSync, watch, type FSWatcher } from 'node:fs'
import { access, lstat, mkdir, readlink, stat } from 'node:fs/promises'
import path from 'node:path'
import type { Document } from 'yaml'
import { ConfigError, formatIssue, MeridianError } from '../errors.js'
import type { Logger } from '../log.js'
import { buildZoneSet, listZoneDir, readZoneSources, ZONE_FILE_RE, zoneFiles, type BuildOptions, type ReadOptions, type ZoneSource } from '../config/load.js'
import { BuildThreadStopped, type ThreadedBuild, type ZoneSetBuilder } from '../config/build-thread.js'
import { applyEdit, editZone, type EditOp } from '../admin/edits.js'
import type { Zone, ZoneSet } from '../model/types.js'
import { createFileAtomic, moveFileDurably, NotDurableError, TEMP_RE, writeFileAtomic } from './atomic.js'
import { openForWriting, type Writer } from './writers.js'
import { SerialBook } from './serials.js'
import { etagOf, ifMatchSatisfied, ifNoneMatchMatches, editText, OnDiskError } from './zone-editor.js'

export interface ConfigStore {
  /** The current set (after a successful `load`). */
  current(): ZoneSet
  /** Loads the whole set; on failure throws ConfigError and keeps the current set. */
  reload(reason: string): Promise<ZoneSet>
  /** Called with each new set once it is swapped in, in the order added; returns the removal. */
  onChange(listener: (set: ZoneSet) => void): () => void
  close(): void
}

/**
 * Changes one zone file's YAML document in place (zone-editor.ts helpers). Throw a MeridianError
 * to refuse the edit (nothing is written).
 */
export type ZoneMutation = (doc: Document) => void

export interface EditOptions {
  /** The request's If-Match: the edit is refused (412) unless it matches the file's current ETag. */
  ifMatch?: string
  /** The request's If-None-Match: the edit is refused (412) when it names the file's current ETag, or is `*`. */
  ifNoneMatch?: string
  /** Why, for the log line (`admin: PATCH /v1/zones/.../regions/eu-west`). */
  reason?: string
}

export interface EditResult {
  /** The set now serving (the same one when the edit changed nothing). */
  set: ZoneSet
  zone: Zone
  /** ETag of the zone's file after the edit. */
  etag: string
  changed: boolean
}

export interface DeleteResult {
  /** The set now serving, without the zone. */
  set: ZoneSet
  /** Where the zone file was. */
  file: string
  /** Where it is now (`<zones>/.meridian/deleted/...`): moving it back serves the zone again. */
  movedTo: string
  /** ETag the zone had. */
  etag: string
}

/** A store whose zones can be edited one file at a time, created and deleted. */
export interface EditableConfigStore extends ConfigStore {
  /** A change as a function of the file's document, or as data (EditOp: made in the build thread, if there is one). */
  edit(origin: string, change: ZoneMutation | EditOp, opts?: EditOptions): Promise<EditResult>
  /** ETag of the zone's file as the current set was built from it. */
  etag(origin: string): string | undefined
  /** The file a new zone `origin` (canonical) is written to: `<zones>/<origin>.yaml`. */
  newZoneFile(origin: string): string
  /**
   * Adds a zone: `text` is its file's content. Validated with the whole set as an edit is; refused
   * (409) when the zone is served or its file exists; the file created atomically, never over another.
   */
  createZone(origin: string, text: string, opts?: Pick<EditOptions, 'reason'>): Promise<EditResult>
  /**
   * Stops serving a zone and moves its file into `<zones>/.meridian/deleted/` (nothing is lost: it
   * is served again when moved back). Preconditions as for an edit.
   */
  deleteZone(origin: string, opts?: EditOptions): Promise<DeleteResult>
}

/** A refused precondition carries the current ETag, so the caller can hand it back. */
export class PreconditionError extends MeridianError {
  constructor(
    message: string,
    readonly etag: string,
  ) {
    super('E_API_PRECONDITION', message, 412)
    this.name = 'PreconditionError'
  }
}

/**
 * Why a zone file must not be replaced, or null: it has no write permission bit (chmod a-w, 0444:
 * its owner said "do not change this", and the atomic rename would replace it all the same, since
 * only the directory's permissions are asked), or, for a process not running as root, this process
 * may not write it. Root may write anything, so for it only the bits count. Follows a link.
 */
async function readOnlyReason(file: string): Promise<string | null> {
  const st = await stat(file).catch(() => undefined)
  if (!st) return null
  const mode = (st.mode & 0o7777).toString(8).padStart(4, '0')
  if ((st.mode & 0o222) === 0) return `mode ${mode}`
  if (process.getuid?.() === 0) return null
  return access(file, constants.W_OK).then(
    () => null,
    () => `mode ${mode}, owner uid ${st.uid}: this process (uid ${process.getuid?.()}) may not write it`,
  )
}

/**
 * An edit whose file was replaced and whose set is served, but whose directory fsync failed: a 500
 * E_ZONE_NOT_DURABLE carrying the new ETag (what a GET now returns).
 */
export class NotDurableEditError extends MeridianError {
  constructor(
    message: string,
    /** What a GET now returns; none when the change deleted the zone. */
    readonly etag: string | undefined,
    options?: { cause?: unknown },
  ) {
    super('E_ZONE_NOT_DURABLE', message, 500, options)
    this.name = 'NotDurableEditError'
  }
}

/** How long a reload that is asked for waits for a zone file's writer to close it, and how often it looks. */
const WRITER_WAIT_MS = 2000
const WRITER_POLL_MS = 100
/** A watched file open for writing this long is warned about (once). */
const WRITER_WARN_MS = 10_000
/**
 * The longest a watched change waits for the changes after it to stop. Each change puts the reload
 * off by the debounce (150 ms) to take a burst of writes as one; changes that never pause that long
 * (a tool writing a file in many small writes, an edit loop) would put it off for ever, so the
 * reload comes at the latest this long after the first change of the burst, and again as long after
 * while they go on. A file some process holds open for writing is still not read (writers.ts).
 */
export const DEBOUNCE_MAX_MS = 2000

/** Writers grouped by the file they write. */
const byFile = (writers: readonly Writer[]): Map<string, Writer[]> => {
  const out = new Map<string, Writer[]>()
  for (const w of writers) out.set(w.file, [...(out.get(w.file) ?? []), w])
  return out
}

/** `process 4242 (cp)`, `processes 4242 (bash), 4243 (sleep)`. */
const processes = (ws: readonly Writer[]): string => `process${ws.length > 1 ? 'es' : ''} ${ws.map((w) => `${w.pid} (${w.command})`).join(', ')}`

/** The served zone an edit starts from (FileConfigStore.served). */
type Served = { current: ZoneSet; zone: Zone; sources: ZoneSource[]; src: ZoneSource; before: string }

/** Serials planned for a set, kept once it is taken. */
type Planned = { commit(): void }

/** A set built for a reload or a change, and its serials. */
type Built = { set: ZoneSet; serials: Planned }

const sameSources = (a: readonly ZoneSource[], b: readonly ZoneSource[]): boolean => a.length === b.length && a.every((s, i) => s.file === b[i]!.file && s.text === b[i]!.text)

export class FileConfigStore implements EditableConfigStore {
  private set: ZoneSet | undefined
  /** The files the current set was built from. */
  private sources: ZoneSource[] = []
  private listeners: ((set: ZoneSet) => void)[] = []
  private failureListeners: ((err: unknown) => void)[] = []
  private watcher: FSWatcher | undefined
  /** The zones directory's parent, for the directory itself being replaced. */
  private parentWatcher: FSWatcher | undefined
  /** Directories holding the files linked zone files name (outside the zones directory), and those files' names. */
  private linkWatchers = new Map<string, FSWatcher>()
  private linkNames = new Map<string, Set<string>>()
  private watching = false
  private debounceMs = 150
  private debounce: NodeJS.Timeout | undefined
  /** When the first change the pending reload waits for came (performance.now()), DEBOUNCE_MAX_MS counted from it. */
  private burstSince: number | undefined
  private chain: Promise<unknown> = Promise.resolve()
  /** The last reload was rejected, and the set serving is not what the files say. */
  private rejected = false
  /** The last watched reload found a zone file open for writing, and is to be tried again. */
  private deferred = false
  /** Files the watcher is waiting for the writers of: since when, and whether that was warned about. */
  private writersSeen = new Map<string, { since: number; warned: boolean }>()
  /** close() was called. */
  private closed = false
  /** The warning that the zones directory has no hard links was logged. */
  private saidNoHardLinks = false

  constructor(
    readonly dir: string,
    private readonly log: Logger,
    private readonly serials: SerialBook = SerialBook.forZonesDir(dir),
    private readonly build: BuildOptions = {},
    private readonly read: ReadOptions = {},
    /** Where sets are built after the first (off the event loop); undefined: here. Its places must be `build`'s. */
    private readonly threaded?: ZoneSetBuilder,
  ) {}

  /**
   * The set of `sources`, with its serials' plan (committed once the set is taken). After the first
   * load, with a build thread, it is built there, so that the parse of a big zone (~0.2 s per 1,000
   * services) holds neither DNS (one process) nor health rounds and admin requests (the control
   * process): the event loop only reads the set back (~8 ms per 1,000). The first load, before
   * anything is served, is built here; so is a set whose thread failed for a reason not the files'.
   */
  private async buildSet(sources: ZoneSource[], generation: number): Promise<Built> {
    if (this.threaded && this.set) {
      try {
        return this.taken(await this.inThread(sources, generation))
      } catch (err) {
        if (!this.retryHere(err)) throw err
      }
    }
    const serials = this.serials.plan()
    return { set: buildZoneSet(sources, serials.serialOf, generation, this.build), serials }
  }

  /** A build in the thread, the serial book's entries and clock with it (and an edit to make first). */
  private inThread(sources: ZoneSource[], generation: number, edit?: Parameters<ZoneSetBuilder['build']>[4]): Promise<ThreadedBuild> {
    const { entries, now } = this.serials.snapshot()
    return this.threaded!.build(sources, generation, entries, now, edit)
  }

  /**
   * A set the thread built, as buildSet returns one: frozen, its serials adopted once it is taken.
   * A store closed while the set was read back (in parts, over turns of the event loop: tens of ms
   * with thousands of services) takes it no further: a stop does not swap in a set, nor write a
   * change, after close().
   */
  private taken(b: ThreadedBuild): Built {
    if (this.closed) throw new BuildThreadStopped('the store was closed while the set was read back from the build thread')
    return { set: Object.freeze(b.set), serials: { commit: () => this.serials.adopt(b.serials) } }
  }

  /**
   * Whether what the thread did not do is done here instead: only when the thread itself failed
   * (logged). Not for a refusal of the files or the change; not during a stop (it would hold up the
   * exit); not after the thread died during the build (out of memory: the same build here would take
   * the server down).
   */
  private retryHere(err: unknown): boolean {
    if (err instanceof MeridianError || err instanceof OnDiskError || err instanceof BuildThreadStopped || this.closed) return false
    this.log.warn({ err: (err as Error).message }, 'the zone set build thread failed; building on the event loop instead')
    return true
  }

  current(): ZoneSet {
    if (!this.set) throw new Error('config store used before its first load')
    return this.set
  }

  /** Whether the last reload rejected the files (the set serving is not theirs), until one loads them or finds them the set's again. */
  get rejectedNow(): boolean {
    return this.rejected
  }

  /** Called with the error of each rejected reload (the current set stays). */
  onReloadFailure(listener: (err: unknown) => void): void {
    this.failureListeners.push(listener)
  }

  onChange(listener: (set: ZoneSet) => void): () => void {
    this.listeners.push(listener)
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener)
    }
  }

  /**
   * Serialised: a reload waits for the one before it, so sets are swapped in order. A zone file
   * that a process holds open for writing is waited for (up to WRITER_WAIT_MS; then the reload is
   * rejected, E_ZONE_BUSY), not read half-written.
   */
  reload(reason: string): Promise<ZoneSet> {
    return this.serialise(() => this.doReload(reason, 'wait'))
  }

  /** Runs `fn` after every reload and edit queued before it; a failure does not stop the queue. */
  private serialise<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn)
    this.chain = next.catch(() => undefined)
    return next
  }

  /** ETag of the zone's file as the current set was built from it. */
  etag(origin: string): string | undefined {
    const zone = this.set?.zones.get(origin)
    const src = zone && this.sources.find((s) => s.file === zone.file)
    return src ? etagOf(src.text) : undefined
  }

  /**
   * Edits one zone's file: serialised with reloads and other edits; the whole set is rebuilt from
   * the files on disk with this file's new text and validated as a reload is (any issue: ConfigError,
   * nothing written); then the file is written atomically (temp, fsync, rename, directory fsync), the
   * set swapped in and the listeners called, and only then does the promise resolve.
   */
  edit(origin: string, change: ZoneMutation | EditOp, opts: EditOptions = {}): Promise<EditResult> {
    return this.serialise(() => this.doEdit(origin, change, opts))
  }

  /**
   * A problem the file has on disk before a change (edited by hand since the last good reload) is
   * not the request's: a 409 saying so, with the file's own positions; null when it has none. The
   * file is judged in the set on disk (`sources`), as a reload judges it: alone, a target that only a
   * zone nested in it holds was an error, and every refused edit of such a parent a 409.
   */
  private async onDiskConflict(src: ZoneSource, sources: ZoneSource[]): Promise<MeridianError | null> {
    const onDisk = await this.buildSet(sources, this.current().generation + 1).then(
      () => [],
      (err: unknown) => (err instanceof ConfigError ? err.issues.filter((i) => i.file === src.file) : []),
    )
    if (onDisk.length === 0) return null
    const listed = onDisk.slice(0, 3).map(formatIssue).join('; ') + (onDisk.length > 3 ? `; and ${onDisk.length - 3} more` : '')
    return new MeridianError('E_API_CONFLICT', `${src.file} has errors as it is on disk, before this change (${listed}); fix the file, then POST /v1/reload`, 409)
  }

  /**
   * The served zone `origin` as an edit or a delete starts from it: every zone file as it is on
   * disk (whole ones: not one some process is still writing, readWhole), this zone's among them, its
   * ETag there (`before`) and the one serving (`served`), the preconditions checked against it.
   */
  private async served(origin: string, opts: EditOptions): Promise<{ current: ZoneSet; zone: Zone; sources: ZoneSource[]; src: ZoneSource; before: string; served: string }> {
    const current = this.current()
    const zone = current.zones.get(origin)
    if (!zone) throw new MeridianError('E_API_NOT_FOUND', `no zone ${origin} is served (zones: ${[...current.zones.keys()].join(', ') || 'none'})`, 404)
    const sources = await this.readWhole('wait').catch((err: unknown) => {
      throw this.ownFileUnreadable(err, zone.file) ?? err
    })
    const src = sources.find((s) => s.file === zone.file)
    if (!src) throw new MeridianError('E_API_CONFLICT', `the file of zone ${origin} (${zone.file}) is no longer in ${this.dir}; reload first`, 409)
    const before = etagOf(src.text)
    // Preconditions compare with the ETag a GET returns: that of the file as the set serving was
    // built from it. A 412 carrying another ETag than the GET's would have a client loop forever.
    const served = this.etag(origin)!
    if (opts.ifMatch !== undefined && !ifMatchSatisfied(opts.ifMatch, served)) {
      throw new PreconditionError(`If-Match ${opts.ifMatch} is not the current ETag of zone ${origin} (${served}): it changed since it was read`, served)
    }
    if (opts.ifNoneMatch !== undefined && ifNoneMatchMatches(opts.ifNoneMatch, served)) {
      throw new PreconditionError(`If-None-Match ${opts.ifNoneMatch} matches the current ETag of zone ${origin} (${served}): the change is made only when it does not`, served)
    }
    // The client saw the version serving, but the file was changed on disk since (by hand, not yet
    // reloaded: --no-watch, or before the watcher's turn). Writing would publish a change it never
    // saw: refused until a reload serves the file as it is, and a GET shows it.
    if (opts.ifMatch !== undefined && opts.ifMatch.trim() !== '*' && before !== served) {
      throw new MeridianError('E_API_CONFLICT', `${src.file} was changed on disk since it was loaded (its ETag there is ${before}, the one serving ${served}): POST /v1/reload to serve it as it is (the file watcher does so by itself), then read the zone again and retry`, 409)
    }
    return { current, zone, sources, src, before, served }
  }

  private async doEdit(origin: string, change: ZoneMutation | EditOp, opts: EditOptions): Promise<EditResult> {
    const started = process.hrtime.bigint()
    const at = await this.served(origin, opts)
    const { current, zone, sources, src, before } = at
    let edited: { text: string; built?: Built }
    try {
      edited = await this.edited(at, change)
    } catch (err) {
      // The file's problems on disk (not YAML, broken since its last load) are 409s naming them.
      if (err instanceof OnDiskError) throw err.yaml ? this.notYaml(src, err.message) : ((await this.onDiskConflict(src, sources)) ?? err)
      throw (err instanceof ConfigError && (await this.onDiskConflict(src, sources))) || err
    }
    const { text, built } = edited
    // Nothing to write; and when the set was built from these very files, nothing to swap either. Else
    // (a hand edit the watcher has not reloaded yet, or --no-watch) the set is rebuilt from the files
    // as a reload would: the answer, its ETag and DNS then show what the file says.
    if (!built || (text === src.text && sameSources(sources, this.sources))) return { set: current, zone, etag: before, changed: false }
    const { set, serials } = built
    const next = sources.map((s) => (s === src ? { file: s.file, text } : s))
    const write = text !== src.text
    if (write) {
      const readOnly = await readOnlyReason(src.file)
      if (readOnly) throw new MeridianError('E_ZONE_READ_ONLY', `${src.file} is read-only (${readOnly}): Meridian does not replace a zone file made read-only; make it writable (chmod u+w) to change it through the API. Nothing was changed`, 409)
    }
    let notDurable: NotDurableError | undefined
    try {
      if (write) await writeFileAtomic(src.file, text)
    } catch (err) {
      if (!(err instanceof NotDurableError)) throw new MeridianError('E_ZONE_WRITE', `cannot write ${src.file}: ${(err as Error).message}; nothing was changed`, 500, { cause: err })
      // The file has the change already: the set serving must say what it says, whatever follows.
      notDurable = err
    }
    const etag = etagOf(text)
    await this.publish(set, next, serials, opts.reason ?? 'edit', started, notDurable && { error: notDurable, etag, what: `the change is in ${src.file}`, redo: ' or repeat the change' })
    return { set, zone: set.zones.get(origin)!, etag, changed: true }
  }

  /**
   * The edited file's text (editText) and the set built with it; no set when nothing changes in the
   * files the set serving was built from. A change given as data is made in the build thread with
   * the build (applyEdit there: the event loop parses, renders and builds nothing); a change given as
   * a function, and one the thread failed to make, here. Serials are committed only once the file is
   * written: a rejected edit leaves the book untouched.
   */
  private async edited(at: Served, change: ZoneMutation | EditOp): Promise<{ text: string; built?: Built }> {
    const { current, zone, sources, src } = at
    if (typeof change !== 'function' && this.threaded && !this.closed) {
      try {
        const b = await this.inThread(sources, current.generation + 1, { file: src.file, op: change, zone: editZone(zone) })
        return { text: b.text!, built: this.taken(b) }
      } catch (err) {
        if (!this.retryHere(err)) throw err
      }
    }
    const text = editText(src.text, typeof change === 'function' ? change : (doc) => applyEdit(doc, change, editZone(zone)))
    if (text === src.text && sameSources(sources, this.sources)) return { text }
    return { text, built: await this.buildSet(sources.map((s) => (s === src ? { file: s.file, text } : s)), current.generation + 1) }
  }

  /**
   * The zone's own file cannot be read for what it is on disk (replaced by a link that dangles or
   * loops since the set serving was loaded): a 409 naming it, as its own file broken by hand is;
   * null for anything else (another file's problem names that file; a failure to read is a 500).
   */
  private ownFileUnreadable(err: unknown, file: string): MeridianError | null {
    if (!(err instanceof ConfigError)) return null
    const own = err.issues.filter((i) => i.file === file && i.content)
    if (own.length === 0 || err.issues.some((i) => i.code === 'E_ZONE_IO' && !i.content)) return null
    return new MeridianError('E_API_CONFLICT', `${own.map(formatIssue).join('; ')}: the zone's file cannot be read as it is on disk (the set serving was loaded before); fix it, or put the file back, then POST /v1/reload. Nothing was changed`, 409)
  }

  private notYaml(src: ZoneSource, message: string): MeridianError {
    return new MeridianError('E_API_CONFLICT', `${src.file} is not valid YAML on disk (${message.split('\n')[0]}); fix it by hand, then POST /v1/reload`, 409)
  }


  newZoneFile(origin: string): string {
    return path.join(this.dir, `${origin}.yaml`)
  }

  createZone(origin: string, text: string, opts: Pick<EditOptions, 'reason'> = {}): Promise<EditResult> {
    return this.serialise(() => this.doCreate(origin, text, opts))
  }

  deleteZone(origin: string, opts: EditOptions = {}): Promise<DeleteResult> {
    return this.serialise(() => this.doDelete(origin, opts))
  }

  private async doCreate(origin: string, text: string, opts: Pick<EditOptions, 'reason'>): Promise<EditResult> {
    const started = process.hrtime.bigint()
    const current = this.current()
    const file = this.newZoneFile(origin)
    const served = current.zones.get(origin)
    if (served) throw new MeridianError('E_API_CONFLICT', `zone ${origin} is served already (from ${served.file}); change it with the region and service routes, or delete it first`, 409)
    // Whatever holds the name (a broken file the last reload refused, a dangling link) is someone's:
    // never replaced.
    const there = await lstat(file).then((st) => st, () => undefined)
    if (there) {
      const what = there.isSymbolicLink() ? `a symbolic link (to ${await readlink(file).catch(() => '?')})` : there.isFile() ? 'a file' : 'something other than a file'
      throw new MeridianError('E_API_CONFLICT', `${file} exists already (${what}) though zone ${origin} is not served from it: Meridian does not replace it; look at it, move it away or fix it (then POST /v1/reload), and retry. Nothing was changed`, 409)
    }
    // The other files as whole ones: not one some process is still writing (readWhole).
    const sources = await this.readWhole('wait')
    const src = { file, text }
    const next = [...sources, src].sort((a, b) => (path.basename(a.file) < path.basename(b.file) ? -1 : 1))
    let serials: Planned
    let set: ZoneSet
    try {
      ;({ set, serials } = await this.buildSet(next, current.generation + 1))
    } catch (err) {
      // Another file declares this origin (added by hand, not reloaded yet, or refused): a conflict.
      const dup = err instanceof ConfigError ? err.issues.find((i) => i.code === 'E_ZONE_DUPLICATE' && (i.file === file || i.message.includes(file))) : undefined
      if (dup) {
        const other = dup.file === file ? dup.message.replace(/^.* is already defined in /, '') : dup.file
        // A file with errors of its own is not served by a reload: it has to be fixed first.
        const broken = (err as ConfigError).issues.filter((i) => i.file === other && i.code !== 'E_ZONE_DUPLICATE').length
        const todo = broken > 0 ? `it has ${broken} error${broken === 1 ? '' : 's'} of its own (meridian check lists them): fix it and POST /v1/reload to serve it` : 'POST /v1/reload to serve it'
        throw new MeridianError('E_API_CONFLICT', `zone ${origin} is declared already by ${other}, which is in ${this.dir} though not served yet: ${todo}, or move it away, then retry. Nothing was changed`, 409)
      }
      throw err
    }
    let notDurable: NotDurableError | undefined
    try {
      await createFileAtomic(file, text, (err) => this.noHardLinks(err))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new MeridianError('E_API_CONFLICT', `${file} appeared while the zone was being created: Meridian does not replace it. Nothing was changed`, 409)
      if (!(err instanceof NotDurableError)) throw new MeridianError('E_ZONE_WRITE', `cannot write ${file}: ${(err as Error).message}; nothing was changed`, 500, { cause: err })
      notDurable = err
    }
    const etag = etagOf(text)
    await this.publish(set, next, serials, opts.reason ?? 'create', started, notDurable && { error: notDurable, etag, what: `zone ${origin} is in ${file}`, redo: '' })
    return { set, zone: set.zones.get(origin)!, etag, changed: true }
  }

  /** Says once (warn) that the zones directory's file system has no hard links, so creates rename (createFileAtomic). */
  private noHardLinks(err: NodeJS.ErrnoException): void {
    if (this.saidNoHardLinks) return
    this.saidNoHardLinks = true
    this.log.warn({ dir: this.dir, err: err.message }, 'the file system of the zones directory has no hard links: a new zone file is renamed into place after a check that the name is free, which cannot exclude a file made at that name by another process in between')
  }

  /** Where a deleted zone file goes: `<zones>/.meridian/deleted/<name>.<UTC time>.<ext>`, a name no file holds yet. */
  private async deletedName(file: string, now: Date): Promise<string> {
    const dir = path.join(this.dir, '.meridian', 'deleted')
    const ext = path.extname(file)
    const stem = path.basename(file, ext)
    const stamp = now.toISOString().replace(/:/g, '-')
    for (let n = 1; ; n++) {
      const tail = `.${stamp}${n === 1 ? '' : `-${n}`}${ext}`
      // A file name holds at most 255 octets: a long name is cut (the time and extension stay).
      let head = stem
      while (Buffer.byteLength(head + tail) > 255) head = head.slice(0, -1)
      const candidate = path.join(dir, head + tail)
      if (!(await lstat(candidate).then(() => true, () => false))) return candidate
    }
  }

  private async doDelete(origin: string, opts: EditOptions): Promise<DeleteResult> {
    const started = process.hrtime.bigint()
    const { current, sources, src, served } = await this.served(origin, opts)
    // A link (into a configuration checkout, a ConfigMap's ..data) is managed where it points: moved
    // away it would dangle (a relative target), and the next deploy would put it back anyway.
    const st = await lstat(src.file)
    if (st.isSymbolicLink()) {
      const target = await readlink(src.file).catch(() => '?')
      throw new MeridianError('E_API_CONFLICT', `${src.file} is a symbolic link (to ${target}): Meridian does not delete a zone whose file is managed elsewhere; remove the link (or its target) where it is managed, and the watcher stops serving the zone. Nothing was changed`, 409)
    }
    const readOnly = await readOnlyReason(src.file)
    if (readOnly) throw new MeridianError('E_ZONE_READ_ONLY', `${src.file} is read-only (${readOnly}): Meridian does not delete a zone file made read-only; make it writable (chmod u+w) to delete it through the API. Nothing was changed`, 409)
    const next = sources.filter((s) => s !== src)
    // The rest of the set as it is on disk must stand on its own (another file broken by hand: 400, as for an edit).
    const { set } = await this.buildSet(next, current.generation + 1)
    let movedTo: string
    let notDurable: NotDurableError | undefined
    try {
      movedTo = await this.deletedName(src.file, new Date())
      await mkdir(path.dirname(movedTo), { recursive: true })
      await moveFileDurably(src.file, movedTo)
    } catch (err) {
      if (!(err instanceof NotDurableError)) throw new MeridianError('E_ZONE_WRITE', `cannot move ${src.file} into ${path.join(this.dir, '.meridian', 'deleted')}: ${(err as Error).message}; nothing was changed`, 500, { cause: err })
      notDurable = err
      movedTo = err.file
    }
    this.swap(set, next, opts.reason ?? 'delete', started)
    if (notDurable) {
      const cause = (notDurable.cause as Error).message
      throw new NotDurableEditError(`zone ${origin} is no longer served and its file was moved to ${movedTo}, but a directory could not be synced (${cause}): the move may not survive a crash or power loss; check the disk, then run sync`, undefined, { cause: notDurable })
    }
    return { set, file: src.file, movedTo, etag: served }
  }

  /**
   * A written file's set made the one serving: its serials kept, the set swapped in. When the write
   * was not durable (the directory fsync failed after the rename), then the 500 that says the
   * change is in place and served (`what`, with its ETag) but may not survive a crash.
   */
  private async publish(set: ZoneSet, sources: ZoneSource[], serials: Planned, reason: string, started: bigint, notDurable: { error: NotDurableError; etag: string; what: string; redo: string } | undefined): Promise<void> {
    serials.commit()
    await this.saveSerials()
    this.swap(set, sources, reason, started)
    if (notDurable) {
      const { error, etag, what, redo } = notDurable
      const cause = (error.cause as Error).message
      throw new NotDurableEditError(`${what} and served (ETag ${etag}), but the directory ${path.dirname(error.file)} could not be synced (${cause}): it may not survive a crash or power loss; check the disk, then run sync${redo}`, etag, { cause: error })
    }
  }

  private saveSerials(): Promise<void> {
    return this.serials.save().catch((err: Error) => this.log.warn({ err: err.message }, 'cannot save SOA serials; they will be recomputed'))
  }

  private swap(set: ZoneSet, sources: ZoneSource[], reason: string, started: bigint): void {
    this.set = set
    this.sources = sources
    this.rejected = false
    const ms = Number(process.hrtime.bigint() - started) / 1e6
    const fields = { reason, generation: set.generation, zones: [...set.zones.values()].map((z) => ({ origin: z.origin, serial: z.soa.serial, names: z.nodes.size })), ms: Math.round(ms * 10) / 10 }
    // An empty directory is most often a mistyped --zones: said at warn level, though files added later are picked up.
    if (sources.length === 0) this.log.warn(fields, `no zone files (*.yaml, *.yml) in ${this.dir}: every query will be refused until some are added`)
    else this.log.info(fields, 'zones loaded')
    for (const l of this.listeners) {
      try {
        l(set)
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'a zone set listener threw')
      }
    }
  }

  /**
   * The zone files as they are once no process holds one open for writing. `wait` (SIGHUP, the API,
   * start-up): polls for up to WRITER_WAIT_MS, then rejects with E_ZONE_BUSY naming the writers;
   * `defer` (the watcher): null at once, and the watcher looks again until the writers are done.
   * Files as the current set was built from them are taken without looking (nothing would change).
   * A `wait` read never gives null (it returns the files or throws), and its overload says so.
   */
  private readWhole(mode: 'wait'): Promise<ZoneSource[]>
  private readWhole(mode: 'wait' | 'defer'): Promise<ZoneSource[] | null>
  private async readWhole(mode: 'wait' | 'defer'): Promise<ZoneSource[] | null> {
    const deadline = Date.now() + WRITER_WAIT_MS
    for (;;) {
      let sources: ZoneSource[] | undefined
      let failure: unknown
      try {
        sources = await readZoneSources(this.dir, this.read)
        if (this.set && sameSources(sources, this.sources)) return sources
      } catch (err) {
        // A file cut mid-write may not even be UTF-8 yet: its writers are looked for all the same.
        failure = err
      }
      const writers = await openForWriting(await zoneFiles(this.dir).catch(() => []))
      if (writers.length === 0) {
        if (failure !== undefined) throw failure
        // A writer that closed between the read and the look may have written after the read.
        const again = await readZoneSources(this.dir, this.read)
        if (sameSources(again, sources!)) {
          this.writersSeen.clear()
          return sources!
        }
        continue
      }
      if (mode === 'defer') {
        this.noteWriters(writers)
        return null
      }
      if (Date.now() >= deadline) {
        throw new ConfigError(
          [...byFile(writers)].map(([file, ws]) => ({ code: 'E_ZONE_BUSY', file, line: 0, col: 0, path: '', message: `cannot read the zone file: it has been open for writing by ${processes(ws)} for more than ${WRITER_WAIT_MS / 1000} s, and a zone file is not read while it is being written (the watcher reloads it when the write ends)` })),
        )
      }
      await new Promise((resolve) => setTimeout(resolve, WRITER_POLL_MS))
    }
  }

  /** Says once per file that the watcher waits for its writers, and again (warn) when the wait grows long. */
  private noteWriters(writers: Writer[]): void {
    const now = Date.now()
    for (const [file, ws] of byFile(writers)) {
      const seen = this.writersSeen.get(file)
      const fields = { file, writers: processes(ws) }
      if (seen === undefined) {
        this.writersSeen.set(file, { since: now, warned: false })
        this.log.info(fields, 'zone file is being written; it is read once no process holds it open for writing')
      } else if (!seen.warned && now - seen.since >= WRITER_WARN_MS) {
        seen.warned = true
        this.log.warn({ ...fields, seconds: Math.round((now - seen.since) / 1000) }, 'zone file still open for writing; it is not read until no process holds it open for writing (write zone files elsewhere and rename them into place)')
      }
    }
  }

  private async doReload(reason: string, mode: 'wait' | 'defer'): Promise<ZoneSet> {
    const started = process.hrtime.bigint()
    try {
      // Directories named like zone files are warned about once a reload, read or not (a deferred
      // read says nothing: the read the watcher makes once the writers are done will).
      const sources = await this.readWhole(mode).then(
        async (read) => {
          if (read !== null) await this.sayDirectories(reason)
          return read
        },
        async (err: unknown) => {
          await this.sayDirectories(reason)
          throw err
        },
      )
      if (sources === null) {
        this.deferred = true
        return this.current()
      }
      if (this.set && sameSources(sources, this.sources)) {
        // The files are what the current set was built from (e.g. the watcher seeing an edit's own
        // write). After a rejection (a bad edit undone), that is said as the end of the error.
        if (this.rejected) this.log.info({ reason, generation: this.set.generation }, 'zone files are again those of the set serving; the earlier rejection is resolved, nothing to reload')
        else this.log[reason.startsWith('file changed') ? 'debug' : 'info']({ reason, generation: this.set.generation }, 'zone files unchanged; nothing to reload')
        this.rejected = false
        return this.set
      }
      if (!this.set) await this.serials.load()
      const { set, serials } = await this.buildSet(sources, (this.set?.generation ?? 0) + 1)
      serials.commit()
      await this.saveSerials()
      this.swap(set, sources, reason, started)
      return set
    } catch (err) {
      this.rejected = this.set !== undefined
      for (const l of this.failureListeners) l(err)
      if (err instanceof ConfigError) {
        if (this.set) this.log.error({ code: err.code, reason, errors: err.issues.map(formatIssue), kept: this.set.generation }, 'zone reload rejected; the last good set keeps serving')
        else this.log.error({ code: err.code, reason, errors: err.issues.map(formatIssue) }, 'zone files rejected; no set was loaded before, so none is served')
      } else if (this.closed && err instanceof BuildThreadStopped) {
        // A stop (SIGTERM) during the build: nothing failed, the reload was given up with the server.
        this.log.info({ reason }, 'zone reload given up: the server is stopping')
      } else if (this.set) {
        // Not a problem of the files (a fault): said all the same, or a watched change would fail unseen.
        this.log.error({ reason, err: (err as Error).message, kept: this.set.generation }, 'zone reload failed; the last good set keeps serving')
      }
      throw err
    }
  }

  /**
   * Warns (once per reload) about directories in the zones directory named like zone files
   * (`x.yaml/`): they are not read (listZoneDir), which an operator who made one may not expect.
   */
  private async sayDirectories(reason: string): Promise<void> {
    const directories = (await listZoneDir(this.dir).catch(() => undefined))?.directories ?? []
    if (directories.length > 0) this.log.warn({ reason, directories }, 'directories named like zone files (*.yaml, *.yml) are not zone files: not read')
  }

  /**
   * Reload when a zone file is created, changed, renamed or removed; when anything else in the
   * directory changes that a zone file may read through (a Kubernetes ConfigMap swaps its `..data`
   * link); when the file a linked zone file names changes where it is; and when the directory
   * itself is replaced (renamed over, a link to it flipped), which is then watched anew.
   */
  watch(debounceMs = 150): void {
    this.debounceMs = debounceMs
    this.watching = true
    this.watchDir()
    const resolved = path.resolve(this.dir)
    const base = path.basename(resolved)
    try {
      this.parentWatcher = watch(path.dirname(resolved), { persistent: false }, (_event, file) => {
        if (file !== null && String(file) !== base) return
        this.watchDir()
        this.changed('zones directory replaced')
      })
      this.parentWatcher.on('error', () => this.parentWatcher?.close())
    } catch {
      // A parent that cannot be watched: the directory's own watch still works while it stays.
    }
    this.watchLinkTargets()
  }

  /**
   * A watched change: reload once no other came for `debounceMs`, or DEBOUNCE_MAX_MS after the
   * first change of the burst, whichever comes first (not after close()). A reload deferred for a
   * file still being written looks again after as long, until the writer is done.
   */
  private changed(reason: string): void {
    if (!this.watching) return
    const now = performance.now()
    this.burstSince ??= now
    clearTimeout(this.debounce)
    this.debounce = setTimeout(() => {
      this.debounce = undefined
      this.burstSince = undefined
      this.deferred = false
      this.serialise(() => this.doReload(reason, 'defer'))
        .catch(() => undefined)
        .finally(() => {
          this.watchLinkTargets()
          if (this.deferred) this.changed(reason)
        })
    }, Math.max(0, Math.min(this.debounceMs, this.burstSince + DEBOUNCE_MAX_MS - now)))
  }

  /** (Re)watches the directory at its path; one that is not there now is watched when it comes back (the parent's watch). */
  private watchDir(): void {
    if (!this.watching) return
    this.watcher?.close()
    this.watcher = undefined
    try {
      this.watcher = watch(this.dir, { persistent: false }, (_event, file) => {
        const name = file === null ? undefined : String(file)
        // The store's own temporary files and state directory are not changes of the zones.
        if (name !== undefined && (TEMP_RE.test(name) || name === '.meridian')) return
        this.changed(`file changed: ${name ?? '?'}`)
      })
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'cannot watch the zones directory; it is watched again when it comes back, and SIGHUP still reloads')
      return
    }
    this.watcher.on('error', (err) => this.log.error({ err: err.message }, 'zone directory watch failed; SIGHUP still reloads'))
  }

  /**
   * Watches the directory of each file a linked zone file names, outside the zones directory, for
   * that file. Synchronous (a readdir and an lstat per file): watching has begun when watch() returns.
   */
  private watchLinkTargets(): void {
    const wanted = new Map<string, Set<string>>()
    const attempt = <T>(fn: () => T): T | undefined => {
      try {
        return fn()
      } catch {
        return undefined
      }
    }
    const own = attempt(() => realpathSync(this.dir)) ?? path.resolve(this.dir)
    for (const name of attempt(() => readdirSync(this.dir)) ?? []) {
      if (!ZONE_FILE_RE.test(name)) continue
      const file = path.join(this.dir, name)
      if (!attempt(() => lstatSync(file).isSymbolicLink())) continue
      const target = attempt(() => realpathSync(file))
      if (target === undefined || path.dirname(target) === own) continue
      const names = wanted.get(path.dirname(target)) ?? new Set<string>()
      wanted.set(path.dirname(target), names.add(path.basename(target)))
    }
    if (!this.watching) return
    for (const [dir, w] of this.linkWatchers) {
      if (wanted.has(dir)) continue
      w.close()
      this.linkWatchers.delete(dir)
    }
    for (const [dir, names] of wanted) {
      this.linkNames.set(dir, names)
      if (this.linkWatchers.has(dir)) continue
      try {
        const w = watch(dir, { persistent: false }, (_event, file) => {
          if (file === null || this.linkNames.get(dir)?.has(String(file))) this.changed(`linked file changed: ${path.join(dir, String(file ?? '?'))}`)
        })
        w.on('error', () => {
          w.close()
          if (this.linkWatchers.get(dir) === w) this.linkWatchers.delete(dir)
        })
        this.linkWatchers.set(dir, w)
      } catch {
        // Gone already (a directory swapped out): the next reload looks again.
      }
    }
  }

  close(): void {
    this.closed = true
    void this.threaded?.close()
    this.watching = false
    clearTimeout(this.debounce)
    this.watcher?.close()
    this.parentWatcher?.close()
    for (const w of this.linkWatchers.values()) w.close()
    this.linkWatchers.clear()
  }
}
