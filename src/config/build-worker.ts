/**
 * The worker thread of ZoneSetBuilder (build-thread.ts): builds each set it is sent with
 * buildZoneSet, as the store would on the event loop, and answers with the set as v8.serialize
 * bytes (transferred, not copied), or the zone files' issues.
 */
import v8 from 'node:v8'
import { parentPort } from 'node:worker_threads'
import { applyEdit } from '../admin/edits.js'
import { ConfigError, MeridianError } from '../errors.js'
import { editTextParsed, OnDiskError } from '../store/zone-editor.js'
import { SerialBook } from '../store/serials.js'
import type { BuildReply, BuildRequest } from './build-thread.js'
import { buildZoneSet, type ParsedZoneText } from './load.js'
import { PLACES } from './places.js'

const port = parentPort
if (!port) throw new Error('build-worker.js runs as a worker thread of ZoneSetBuilder')

port.on('message', (req: BuildRequest) => {
  let reply: BuildReply
  try {
    const book = SerialBook.of(req.serials, () => req.now)
    const plan = book.plan()
    let sources = req.sources
    let text: string | undefined
    // The edited file as its rendering's check parsed it: built without parsing it again.
    let parsed: Map<string, ParsedZoneText> | undefined
    if (req.edit) {
      const edited = editIn(req)
      if ('id' in edited) return port.postMessage(edited)
      text = edited.text
      if (edited.parsed) parsed = new Map([[req.edit.file, edited.parsed]])
      sources = sources.map((s) => (s.file === req.edit!.file ? { file: s.file, text: edited.text } : s))
    }
    const set = buildZoneSet(sources, plan.serialOf, req.generation, PLACES, parsed)
    const bytes = v8.serialize(set)
    // The bytes' own ArrayBuffer is handed over; a view into a larger one is copied first.
    const owned = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
    reply = { id: req.id, ok: true, bytes: owned as ArrayBuffer, serials: plan.given(), ...(text !== undefined ? { text } : {}) }
    port.postMessage(reply, [owned as ArrayBuffer])
    return
  } catch (err) {
    reply = err instanceof ConfigError ? { id: req.id, ok: false, issues: err.issues } : { id: req.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }
  }
  port.postMessage(reply)
})

/** The edited file's new text, made as the store makes it on the event loop (editText), and its parse when the build can take it; or the reply that refuses it. */
function editIn(req: BuildRequest): { text: string; parsed?: ParsedZoneText } | BuildReply {
  const { file, op, zone } = req.edit!
  const src = req.sources.find((s) => s.file === file)
  if (!src) return { id: req.id, ok: false, error: `the edited file ${file} is not among the sources` }
  try {
    return editTextParsed(src.text, (doc) => applyEdit(doc, op, zone))
  } catch (err) {
    if (err instanceof OnDiskError) return { id: req.id, ok: false, onDisk: err.message, yaml: err.yaml }
    if (!(err instanceof MeridianError)) throw err
    const details = (err as { details?: unknown }).details
    return { id: req.id, ok: false, refused: { code: err.code, status: err.status, message: err.message, details: Array.isArray(details) ? details : [] } }
  }
}
