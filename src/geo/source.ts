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
import { basename, dirname } from 'node:path'
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
}

/** The identity of a file's contents as stat() sees them. */
const identity = (s: { dev: number; ino: number; size: number; mtimeMs: number }) => `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`

export class GeoSource {
  private listeners: ((db: GeoDb) => void)[] = []
  private running: Promise<GeoReload> | undefined
  private again = false
  private watcher: FSWatcher | undefined
  private debounce: NodeJS.Timeout | undefined

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
   * Takes the file on disk when it is not the one open. Never throws: a file that cannot be taken
   * is the result's `error`. Reloads asked while one runs are run once more after it.
   */
  reload(): Promise<GeoReload> {
    if (this.running) {
      this.again = true
      return this.running
    }
    const run = async (): Promise<GeoReload> => {
      let result: GeoReload
      let changed = false
      do {
        this.again = false
        result = await this.once()
        changed ||= result.changed
      } while (this.again)
      return { ...result, changed }
    }
    this.running = run().finally(() => (this.running = undefined))
    return this.running
  }

  private async once(): Promise<GeoReload> {
    const path = this.db.info.path
    const base = { path, changed: false }
    let id: string
    try {
      id = identity(await stat(path))
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      return { ...base, buildEpoch: this.epoch(), error: `GeoIP database ${path} ${e.code === 'ENOENT' ? 'does not exist' : `cannot be read (${e.code ?? e.message})`}` }
    }
    if (id === this.id) return { ...base, buildEpoch: this.epoch() }
    let next: GeoDb
    try {
      next = await GeoDb.open(path, this.options)
    } catch (err) {
      return { ...base, buildEpoch: this.epoch(), error: (err as Error).message }
    }
    const old = this.db
    this.db = next
    this.id = id
    for (const fn of this.listeners) fn(next)
    old.close()
    return { path, changed: true, buildEpoch: this.epoch() }
  }

  private epoch(): string {
    return this.db.info.buildEpoch.toISOString()
  }

  /**
   * Calls `changed` (debounced) when the file may have been replaced or written: watches its
   * directory, as a rename into place (what geoipupdate does) leaves a watch of the file itself on
   * the old inode. `changed` is expected to reload().
   */
  watch(changed: () => void, onError: (err: Error) => void, debounceMs = 250): void {
    const path = this.db.info.path
    const name = basename(path)
    this.watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      if (file && String(file) !== name) return
      clearTimeout(this.debounce)
      this.debounce = setTimeout(changed, debounceMs)
    })
    this.watcher.on('error', onError)
  }

  close(): void {
    clearTimeout(this.debounce)
    this.watcher?.close()
    this.db.close()
  }
}
