/**
 * The worker thread of ZoneSetBuilder (build-thread.ts): builds each set it is sent with
 * buildZoneSet, as the store would on the event loop, and answers with the set as v8.serialize
 * parts (set-parts.ts; transferred, not copied), or the zone files' issues.
 *
 * An admin change is made here on the file's text before the build (editIn). The new text's parse
 * (the check of its rendering, which the build takes) is kept once the set is built: the next
 * change of that file starts from it when the file's text is exactly that one (an undrain after a
 * drain, a series of changes), not parsing it again (~0.5 s of the ~1 s of a change of 5,000
 * services). A file changed by hand, or any other text, is parsed.
 */
import { parentPort } from 'node:worker_threads'
import { applyEdit } from '../admin/edits.js'
import { ConfigError, MeridianError } from '../errors.js'
import { editTextParsed, OnDiskError } from '../store/zone-editor.js'
import { SerialBook } from '../store/serials.js'
import type { BuildReply, BuildRequest } from './build-thread.js'
import { buildZoneSet, type ParsedZoneText } from './load.js'
import { PLACES } from './places.js'
import { serializeInParts } from './set-parts.js'

const port = parentPort
if (!port) throw new Error('build-worker.js runs as a worker thread of ZoneSetBuilder')

/**
 * The last change's new text as the build parsed it, and its file: what the next change of that
 * file starts from when the text is still exactly this (editTextParsed's `from`). Given up when it
 * is taken (the change is made on the document itself) and replaced by the next change's; held
 * until the thread ends (IDLE_MS without a build): ~16 MB of heap for a file of 5,000 services.
 */
let kept: { file: string; parsed: ParsedZoneText } | undefined

port.on('message', (req: BuildRequest) => {
  let reply: BuildReply
  try {
    const book = SerialBook.of(req.serials, () => req.now)
    const plan = book.plan()
    let sources = req.sources
    let text: string | undefined
    // The edited file as its rendering's check parsed it: built without parsing it again.
    let parsed: Map<string, ParsedZoneText> | undefined
    let reused = false
    if (req.edit) {
      const edited = editIn(req)
      if ('id' in edited) return port.postMessage(edited)
      text = edited.text
      reused = edited.reused
      if (edited.parsed) parsed = new Map([[req.edit.file, edited.parsed]])
      sources = sources.map((s) => (s.file === req.edit!.file ? { file: s.file, text: edited.text } : s))
    }
    const set = buildZoneSet(sources, plan.serialOf, req.generation, PLACES, parsed)
    // Built: the edited file's parse is the document parseZoneText gives of its new text (the build
    // only read its keys as written, as the check had). Not its toJS, which the build took (and gave
    // the schema's defaults).
    const built = req.edit && parsed?.get(req.edit.file)
    if (built) kept = { file: req.edit!.file, parsed: { text: built.text, doc: built.doc, lc: built.lc } }
    // In parts, read one per turn of the event loop (set-parts.ts); each part's own ArrayBuffer is
    // handed over, a view into a larger one copied first.
    const parts = serializeInParts(set).map((b) => (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b.buffer : b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)) as ArrayBuffer)
    reply = { id: req.id, ok: true, parts, serials: plan.given(), ...(text !== undefined ? { text, reused } : {}) }
    port.postMessage(reply, parts)
    return
  } catch (err) {
    reply = err instanceof ConfigError ? { id: req.id, ok: false, issues: err.issues } : { id: req.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }
  }
  port.postMessage(reply)
})

/**
 * The edited file's new text, made as the store makes it on the event loop (editText), and its parse
 * when the build can take it, and whether the change started from the kept parse; or the reply that refuses it.
 */
function editIn(req: BuildRequest): { text: string; parsed?: ParsedZoneText; reused: boolean } | BuildReply {
  const { file, op, zone } = req.edit!
  const src = req.sources.find((s) => s.file === file)
  if (!src) return { id: req.id, ok: false, error: `the edited file ${file} is not among the sources` }
  // The whole text compared, not a time or a size: a hand edit of one character is parsed.
  const from = kept !== undefined && kept.file === file && kept.parsed.text === src.text ? kept.parsed : undefined
  if (from) kept = undefined
  try {
    return { ...editTextParsed(src.text, (doc) => applyEdit(doc, op, zone), from), reused: from !== undefined }
  } catch (err) {
    if (err instanceof OnDiskError) return { id: req.id, ok: false, onDisk: err.message, yaml: err.yaml }
    if (!(err instanceof MeridianError)) throw err
    const details = (err as { details?: unknown }).details
    return { id: req.id, ok: false, refused: { code: err.code, status: err.status, message: err.message, details: Array.isArray(details) ? details : [] } }
  }
}
