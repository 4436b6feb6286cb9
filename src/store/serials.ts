/**
 * `serial: auto`: the SOA serial rises whenever a zone's content changes, across restarts too.
 * The last (hash, serial) of each zone is kept in `<zones>/.meridian/serials.json`, written atomically.
 * A new serial is max(previous + 1, now in Unix seconds), so it also rises when the state file is lost.
 */
import { mkdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { writeFileAtomic } from './atomic.js'

/** A zone's last content hash and the serial it was given. */
export interface SerialEntry {
  hash: string
  serial: number
}
type Entry = SerialEntry

export class SerialBook {
  private entries = new Map<string, Entry>()
  private dirty = false

  constructor(
    private readonly file: string | undefined,
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

  static forZonesDir(dir: string): SerialBook {
    return new SerialBook(path.join(dir, '.meridian', 'serials.json'))
  }

  /** A book of these entries, kept nowhere: what a zone-set build thread plans serials with. */
  static of(entries: Iterable<[string, SerialEntry]>, now: () => number): SerialBook {
    const book = new SerialBook(undefined, now)
    for (const [origin, e] of entries) book.entries.set(origin, { hash: e.hash, serial: e.serial })
    return book
  }

  /** The entries now, for a build elsewhere (SerialBook.of), with this book's clock. */
  snapshot(): { entries: [string, SerialEntry][]; now: number } {
    return { entries: [...this.entries], now: this.now() }
  }

  /** Takes serials a plan elsewhere gave (its given()), as that plan's commit() would. */
  adopt(given: Iterable<[string, SerialEntry]>): void {
    for (const [origin, e] of given) {
      this.entries.set(origin, e)
      this.dirty = true
    }
  }

  async load(): Promise<void> {
    if (!this.file) return
    try {
      const parsed = JSON.parse(await readFile(this.file, 'utf8')) as Record<string, Entry>
      for (const [k, v] of Object.entries(parsed)) {
        if (v && typeof v.hash === 'string' && Number.isInteger(v.serial)) this.entries.set(k, v)
      }
    } catch {
      // Missing or unreadable: serials restart from the clock, which still rises.
    }
  }

  /**
   * Serials for one build of the zone set, kept aside until `commit()`: a set that is rejected (or
   * an edit that fails to write) leaves the book as it was.
   */
  plan(): { serialOf: (origin: string, hash: string) => number; commit(): void; given(): [string, SerialEntry][] } {
    const pending = new Map<string, Entry>()
    return {
      serialOf: (origin, hash) => {
        const prev = pending.get(origin) ?? this.entries.get(origin)
        if (prev && prev.hash === hash) return prev.serial
        const serial = Math.min(Math.max((prev?.serial ?? 0) + 1, this.now()), 0xffffffff)
        pending.set(origin, { hash, serial })
        return serial
      },
      commit: () => {
        for (const [origin, e] of pending) this.entries.set(origin, e)
        if (pending.size > 0) this.dirty = true
      },
      given: () => [...pending],
    }
  }

  /** The serial for this content (a new, higher one if the content changed), committed at once. */
  serialFor(origin: string, hash: string): number {
    const plan = this.plan()
    const serial = plan.serialOf(origin, hash)
    plan.commit()
    return serial
  }

  async save(): Promise<void> {
    if (!this.file || !this.dirty) return
    await mkdir(path.dirname(this.file), { recursive: true })
    await writeFileAtomic(this.file, JSON.stringify(Object.fromEntries(this.entries), null, 2) + '\n')
    this.dirty = false
  }
}
