/**
 * The file-backed config store: `zones/*.yaml` loaded as one set, reloaded when a file changes
 * (fs.watch, debounced) or on SIGHUP (wired in cli.ts). A set with any error is rejected as a whole
 * and the last good set keeps serving. An etcd-backed store will implement the same interface.
 */
import { watch, type FSWatcher } from 'node:fs'
import { ConfigError } from '../errors.js'
import type { Logger } from '../log.js'
import { buildZoneSet, readZoneSources, ZONE_FILE_RE, type BuildOptions } from '../config/load.js'
import type { ZoneSet } from '../model/types.js'
import { SerialBook } from './serials.js'

export interface ConfigStore {
  /** The current set (after a successful `load`). */
  current(): ZoneSet
  /** Loads the whole set; on failure throws ConfigError and keeps the current set. */
  reload(reason: string): Promise<ZoneSet>
  /** Called with each new set once it is swapped in. */
  onChange(listener: (set: ZoneSet) => void): void
  close(): void
}

export class FileConfigStore implements ConfigStore {
  private set: ZoneSet | undefined
  private generation = 0
  private listeners: ((set: ZoneSet) => void)[] = []
  private watcher: FSWatcher | undefined
  private debounce: NodeJS.Timeout | undefined
  private chain: Promise<unknown> = Promise.resolve()

  constructor(
    readonly dir: string,
    private readonly log: Logger,
    private readonly serials: SerialBook = SerialBook.forZonesDir(dir),
    private readonly build: BuildOptions = {},
  ) {}

  current(): ZoneSet {
    if (!this.set) throw new Error('config store used before its first load')
    return this.set
  }

  onChange(listener: (set: ZoneSet) => void): void {
    this.listeners.push(listener)
  }

  /** Serialised: a reload waits for the one before it, so sets are swapped in order. */
  reload(reason: string): Promise<ZoneSet> {
    const next = this.chain.then(() => this.doReload(reason))
    this.chain = next.catch(() => undefined)
    return next
  }

  private async doReload(reason: string): Promise<ZoneSet> {
    const started = process.hrtime.bigint()
    try {
      const sources = await readZoneSources(this.dir)
      if (this.generation === 0) await this.serials.load()
      const set = buildZoneSet(sources, (o, h) => this.serials.serialFor(o, h), this.generation + 1, this.build)
      await this.serials.save().catch((err: Error) => this.log.warn({ err: err.message }, 'cannot save SOA serials; they will be recomputed'))
      this.generation = set.generation
      this.set = set
      const ms = Number(process.hrtime.bigint() - started) / 1e6
      this.log.info(
        { reason, generation: set.generation, zones: [...set.zones.values()].map((z) => ({ origin: z.origin, serial: z.soa.serial, names: z.nodes.size })), ms: Math.round(ms * 10) / 10 },
        sources.length === 0 ? `no zone files in ${this.dir}: every query will be refused` : 'zones loaded',
      )
      for (const l of this.listeners) l(set)
      return set
    } catch (err) {
      if (err instanceof ConfigError) {
        this.log.error({ reason, errors: err.issues.map((i) => `${i.file}:${i.line}:${i.col}: ${i.path ? i.path + ': ' : ''}${i.message}`), kept: this.set?.generation ?? null }, 'zone reload rejected; the last good set keeps serving')
      }
      throw err
    }
  }

  /** Reload when a zone file is created, changed, renamed or removed. */
  watch(debounceMs = 150): void {
    this.watcher = watch(this.dir, { persistent: false }, (_event, file) => {
      if (file && !ZONE_FILE_RE.test(String(file))) return
      clearTimeout(this.debounce)
      this.debounce = setTimeout(() => {
        this.reload(`file changed: ${file ?? '?'}`).catch(() => undefined)
      }, debounceMs)
    })
    this.watcher.on('error', (err) => this.log.error({ err: err.message }, 'zone directory watch failed; SIGHUP still reloads'))
  }

  close(): void {
    clearTimeout(this.debounce)
    this.watcher?.close()
  }
}
