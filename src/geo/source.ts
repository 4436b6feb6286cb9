/**
 * GeoSource: the GeoIP database a server answers from, reloaded when its file is replaced (a
 * `geoipupdate` run, a new ip-location-db release). `reload()` (SIGHUP, `POST /v1/reload`, the
 * file watch) stats the file and, when it is another file than the one open (device, inode, size
 * or modification time differ), opens it beside the old one, swaps it in and closes the old one.
 * A file that cannot be opened (half written, not a MaxMind DB) changes nothing: the last good
 * database keeps answering, and the next reload tries again. Lookups go through `locate`, which
 * always reads the current database.
 */
import { watch, type FSWatcher } from 'node:fs'
import { stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { GeoDb, type GeoDbInfo, type GeoDbOptions } from './geodb.js'
import type { ClientLocation } from './types.js'

/** What a reload did. */
export interface GeoReload {
  /** The database file (a directory given to `--geodb` resolved to its file). */
  path: string
  /** Whether a new database is now answering. */
  changed: boolean
  /** The open database's build time (its metadata's build_epoch), ISO 8601. */
  buildEpoch: string
  /** Why the file on disk was not taken (the last good database keeps answering). */
  error?: string
  /** The error is the one already reported for this same file (not worth logging again). */
  repeated?: boolean
}

/** The identity of a file's contents as stat() sees them. */
const identity = (s: { dev: number; ino: number; size: number; mtimeMs: number }) => `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`

export class GeoSource {
  private listeners: ((db: GeoDb) => void)[] = []
  private reporters: ((r: GeoReload, why: string) => void)[] = []
  private closed = false
  private running: Promise<GeoReload> | undefined
  private again = false
  private watcher: FSWatcher | undefined
  private debounce: NodeJS.Timeout | undefined
  private poll: NodeJS.Timeout | undefined
  /** The last file refused, and why: the same file is not opened again until it changes. */
  private refused: { id: string; error: string } | undefined

  private constructor(
    private db: GeoDb,
    private id: string,
    private readonly options: GeoDbOptions,
  ) {}

  /** Opens `path` (a file, or a directory holding the default database): throws as GeoDb.open. */
  static async open(path: string, options: GeoDbOptions = {}): Promise<GeoSource> {
    const db = await GeoDb.open(path, options)
    return new GeoSource(db, identity(await stat(db.info.path)), options)
  }

  /** The database answering now. */
  get current(): GeoDb {
    return this.db
  }

  get info(): GeoDbInfo {
    return this.db.info
  }

  /** Where `address` is, by the current database (GeoDb.locate). */
  readonly locate = (address: string, prefix?: number): ClientLocation => this.db.locate(address, prefix)

  /** Called with the new database after each swap (answer caches forget their client locations). */
  onChange(fn: (db: GeoDb) => void): void {
    this.listeners.push(fn)
  }

  /**
   * Called once for each file taken or refused (not again for a file refused before), whichever of
   * the reloads sharing a run asked, with the `why` of the one that started it: where to log and count.
   */
  onReport(fn: (r: GeoReload, why: string) => void): void {
    this.reporters.push(fn)
  }

  /**
   * Takes the file on disk when it is not the one open. Never throws: a file that cannot be taken
   * is the result's `error`. Reloads asked while one runs are run once more after it.
   */
  reload(why = 'asked'): Promise<GeoReload> {
    if (this.running) {
      this.again = true
      return this.running
    }
    const run = async (): Promise<GeoReload> => {
      try {
        let result: GeoReload
        let changed = false
        do {
          this.again = false
          result = await this.once()
          changed ||= result.changed
          if (result.changed || (result.error && !result.repeated)) for (const fn of this.reporters) fn(result, why)
        } while (this.again)
        return { ...result, changed }
      } finally {
        // In the same turn as the last look at `again`: a reload asked after it starts a run of its own.
        this.running = undefined
      }
    }
    this.running = run()
    return this.running
  }

  private async once(): Promise<GeoReload> {
    const path = this.db.info.path
    let id: string
    try {
      id = identity(await stat(path))
    } catch (err) {
      // Gone or unreadable: reported once, like a refused file (the poll asks every 5 s), until
      // another reason or another file.
      const e = err as NodeJS.ErrnoException
      const error = `GeoIP database ${path} ${e.code === 'ENOENT' ? 'does not exist' : `cannot be read (${e.code ?? e.message})`}`
      const missing = `stat:${e.code ?? e.message}`
      if (this.refused?.id === missing && this.refused.error === error) return this.result(false, { error, repeated: true })
      this.refused = { id: missing, error }
      return this.result(false, { error })
    }
    if (id === this.id) {
      // The file open is there again (renamed back): a later failure is news.
      this.refused = undefined
      return this.result(false)
    }
    if (id === this.refused?.id) return this.result(false, { error: this.refused.error, repeated: true })
    let next: GeoDb
    try {
      next = await GeoDb.open(path, this.options)
    } catch (err) {
      this.refused = { id, error: (err as Error).message }
      return this.result(false, { error: this.refused.error })
    }
    if (this.closed) {
      next.close()
      return this.result(false)
    }
    const old = this.db
    this.db = next
    this.id = id
    this.refused = undefined
    for (const fn of this.listeners) fn(next)
    old.close()
    return this.result(true)
  }

  /** What a reload did, with the database answering now. */
  private result(changed: boolean, refused?: Pick<GeoReload, 'error' | 'repeated'>): GeoReload {
    return { path: this.db.info.path, changed, buildEpoch: this.db.info.buildEpoch.toISOString(), ...refused }
  }

  /**
   * Calls `changed` when the file may have been replaced or written, which is expected to reload()
   * (a stat when nothing changed). Two ways, as neither sees every way a file is replaced:
   * - a watch of its directory, debounced: a rename into place (what geoipupdate does) leaves a watch
   *   of the file itself on the old inode. Any name counts, as the path may go through a symbolic
   *   link there that is swapped (a Kubernetes ConfigMap's `..data`);
   * - every `pollMs`: a link swapped in another directory of the path, or the directory removed and
   *   made again (the watch then sees nothing more).
   */
  watch(changed: () => void, onError: (err: Error) => void, debounceMs = 250, pollMs = 5000): void {
    this.watcher = watch(dirname(this.db.info.path), { persistent: false }, () => {
      clearTimeout(this.debounce)
      this.debounce = setTimeout(changed, debounceMs)
    })
    this.watcher.on('error', onError)
    this.poll = setInterval(changed, pollMs)
    this.poll.unref()
  }

  close(): void {
    this.closed = true
    clearTimeout(this.debounce)
    clearInterval(this.poll)
    this.watcher?.close()
    this.db.close()
  }
}
