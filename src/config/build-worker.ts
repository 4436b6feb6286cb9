/**
 * The worker thread of ZoneSetBuilder (build-thread.ts): builds each set it is sent with
 * buildZoneSet, as the store would on the event loop, and answers with the set as v8.serialize
 * bytes (transferred, not copied), or the zone files' issues.
 */
import v8 from 'node:v8'
import { parentPort } from 'node:worker_threads'
import { ConfigError } from '../errors.js'
import { SerialBook } from '../store/serials.js'
import type { BuildReply, BuildRequest } from './build-thread.js'
import { buildZoneSet } from './load.js'
import { PLACES } from './places.js'

const port = parentPort
if (!port) throw new Error('build-worker.js runs as a worker thread of ZoneSetBuilder')

port.on('message', (req: BuildRequest) => {
  let reply: BuildReply
  try {
    const book = SerialBook.of(req.serials, () => req.now)
    const plan = book.plan()
    const set = buildZoneSet(req.sources, plan.serialOf, req.generation, PLACES)
    const bytes = v8.serialize(set)
    // The bytes' own ArrayBuffer is handed over; a view into a larger one is copied first.
    const owned = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
    reply = { id: req.id, ok: true, bytes: owned as ArrayBuffer, serials: plan.given() }
    port.postMessage(reply, [owned as ArrayBuffer])
    return
  } catch (err) {
    reply = err instanceof ConfigError ? { id: req.id, ok: false, issues: err.issues } : { id: req.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }
  }
  port.postMessage(reply)
})
