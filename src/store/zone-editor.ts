/**
 * Editing a zone file in place: the admin API's changes are made to the file's YAML Document (the
 * `yaml` package keeps comments and key order), then rendered back so that every line the change
 * did not touch keeps its exact text (comment alignment, flow-collection spacing, quoting).
 *
 *   const doc = parseZoneText(text)
 *   setAt(doc, ['regions', 'eu-west', 'weight'], 200)       // a scalar keeps its comment
 *   mergePatchAt(doc, ['regions', 'eu-west'], { check: { interval: 3 }, drained: null })   // RFC 7396
 *   deleteAt(doc, ['services', 'www'])
 *   const next = renderEdited(text, doc)                     // only the changed lines differ
 *
 * The ETag of a zone is a hash of its file's text: `etagOf(text)` (strong, quoted).
 * FileConfigStore.edit (file-store.ts) runs an edit as a reload would: whole set rebuilt, then the
 * file written atomically, then the set swapped in.
 */
import { createHash } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import YAML, { isAlias, isCollection, isMap, isScalar, isSeq, type Document, type Node as YamlNode, type Scalar, type YAMLMap, type YAMLSeq } from 'yaml'
import { parseForBuild, type ParsedZoneText } from '../config/load.js'
import { mapKeysAsWritten } from '../config/yaml-keys.js'
import { MeridianError } from '../errors.js'

export type KeyPath = readonly (string | number)[]

/** Strong ETag of a zone file's text: `"` + the first 32 hex digits of its SHA-256 + `"`. */
export function etagOf(text: string): string {
  return `"${createHash('sha256').update(text).digest('hex').slice(0, 32)}"`
}

/**
 * RFC 9110 §13.1.1: `*` matches any current representation; otherwise one of the listed ETags must
 * equal `etag` by strong comparison (a weak `W/"..."` ETag never matches).
 */
export function ifMatchSatisfied(header: string, etag: string): boolean {
  const h = header.trim()
  if (h === '*') return true
  return h
    .split(',')
    .map((t) => t.trim())
    .some((t) => t === etag)
}

/**
 * Whether If-None-Match names `etag` (weak comparison, RFC 9110 §13.1.2): `*` or a tag in its list,
 * `W/` or not. A GET then gets 304; a change, 412.
 */
export function ifNoneMatchMatches(header: string, etag: string): boolean {
  return header.split(',').some((t) => t.trim() === '*' || t.trim().replace(/^W\//, '') === etag)
}

/** Parses a zone file's text as the loader does (mappings' keys as written), keeping comments. Check `doc.errors` before editing. */
export function parseZoneText(text: string): Document {
  const doc = parseUniqueKeys(text, { prettyErrors: false })
  mapKeysAsWritten(doc)
  return doc
}

/**
 * YAML.parseDocument(text, { uniqueKeys: true, ...options }), the same document and errors, in less
 * time: the parser's own check compares each key with every key before it in its mapping, 0.3-0.5 s
 * for the 5,000 services of one zone file (each edit parsed twice so). The text is parsed without
 * it and each mapping's scalar keys are looked up in a Map; only when two keys may be one (the Map's
 * equality is the parser's, but for NaN) is it parsed again with the parser's check, its errors then
 * exactly the parser's.
 */
export function parseUniqueKeys(text: string, options: { prettyErrors?: boolean } = {}): Document {
  const doc = YAML.parseDocument(text, { ...options, uniqueKeys: false })
  return hasKeyTwice(doc) ? YAML.parseDocument(text, { ...options, uniqueKeys: true }) : doc
}

/** A change the zone file as it is on disk prevents: not YAML (`yaml`), or content that made the change fail (an alias bomb). */
export class OnDiskError extends Error {
  constructor(
    message: string,
    readonly yaml: boolean,
  ) {
    super(message)
    this.name = 'OnDiskError'
  }
}

/**
 * `text` with `change` made on its document, rendered back with its comments and untouched lines
 * (renderEdited). The change's own refusals (MeridianErrors: a 404, a 409) pass through; the file's
 * problems are OnDiskErrors. The store makes edits with it, on the event loop or in the build thread.
 */
export function editText(text: string, change: (doc: Document) => void): string {
  return editTextParsed(text, change).text
}

/**
 * editText, and the new text parsed as the build parses it when checking the rendering did so
 * (renderEditedParsed), for buildZoneSet's `parsed`.
 *
 * `from`: such a parse handed on by an earlier edit (its `parsed`, which the build thread keeps),
 * taken instead of parsing `text` when it is the parse of exactly this text: it is then the
 * document parseZoneText would give (its check found no error and no key twice, and read the keys
 * as written). The change is made on that document itself (a copy took half as long as the parse):
 * it must be no one else's.
 */
export function editTextParsed(text: string, change: (doc: Document) => void, from?: ParsedZoneText): { text: string; parsed?: ParsedZoneText } {
  const doc = from !== undefined && from.text === text ? from.doc : parseZoneText(text)
  if (doc.errors.length > 0) throw new OnDiskError(doc.errors[0]!.message.split('\n')[0]!, true)
  try {
    change(doc)
    return renderEditedParsed(text, doc)
  } catch (err) {
    if (err instanceof MeridianError) throw err
    throw new OnDiskError(err instanceof Error ? err.message : String(err), false)
  }
}

export const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)
const isScalarValue = (v: unknown): boolean => v === null || (typeof v !== 'object' && typeof v !== 'function')

/** A new node for `value`; small collections of scalars are written in flow style (`[a, b]`, `{ lat: 1, lon: 2 }`), as zone files usually are. */
function createStyled(doc: Document, value: unknown): YamlNode {
  const node = doc.createNode(value) as YamlNode
  YAML.visit(node, {
    Map(_k, m) {
      if (m.items.every((p) => isScalar(p.value)) && JSON.stringify(m.toJSON()).length <= 80) m.flow = true
    },
    Seq(_k, s) {
      if (s.items.every((i) => isScalar(i)) && JSON.stringify(s.toJSON()).length <= 80) s.flow = true
    },
  })
  return node
}

/**
 * The text of a new zone file holding `value` (a zone definition as plain JSON values): a block
 * mapping at the top, small collections of scalars in flow style as zone files usually write them
 * (`soa: { mname: ns1, rname: hostmaster }`, `vips: [ 192.0.2.1 ]`). The text is checked to parse
 * back to exactly `value`; should it not, the value is written as JSON, which is YAML too.
 */
export function renderNewZone(value: Record<string, unknown>): string {
  const doc = new YAML.Document()
  const node = createStyled(doc, value)
  if (isMap(node)) node.flow = false
  doc.contents = node as typeof doc.contents
  const text = doc.toString({ lineWidth: 0, flowCollectionPadding: true })
  const back = YAML.parseDocument(text, { uniqueKeys: true })
  if (back.errors.length === 0 && isDeepStrictEqual(back.toJS(), value)) return text
  return JSON.stringify(value, null, 2) + '\n'
}

/**
 * Makes `node` hold `value`, changing it in place where it can so that comments, key order and
 * styles stay: a scalar keeps its node; a mapping loses the keys `value` lacks, keeps the order of
 * the others, and gets new keys at its end; a sequence is updated item by item. Returns the node to
 * store (the same one, or a new one when the kind of value changed).
 */
function assignNode(doc: Document, node: YamlNode, value: unknown): YamlNode {
  if (isScalar(node) && isScalarValue(value)) {
    if (typeof node.value !== typeof value) node.type = undefined // let the stringifier choose quoting for the new type
    node.value = value
    return node
  }
  if (isMap(node) && isPlainObject(value)) {
    const map = node as YAMLMap<unknown, unknown>
    for (const pair of [...map.items]) {
      const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key)
      if (!(k in value)) map.delete(pair.key)
    }
    for (const [k, v] of Object.entries(value)) {
      const child = map.get(k, true) as YamlNode | undefined
      if (child === undefined) map.set(k, createStyled(doc, v))
      else {
        const next = assignNode(doc, child, v)
        if (next !== child) map.set(k, next)
      }
    }
    return node
  }
  if (isSeq(node) && Array.isArray(value)) {
    const seq = node as YAMLSeq<unknown>
    if (value.every(isScalarValue)) {
      // A list of scalars (VIPs, region names): items that stay keep their node (comment, quoting).
      const unused = seq.items.filter((i): i is Scalar => isScalar(i))
      seq.items = value.map((v) => {
        const at = unused.findIndex((i) => i.value === v)
        return at >= 0 ? unused.splice(at, 1)[0]! : createStyled(doc, v)
      })
      return node
    }
    value.forEach((v, i) => {
      const child = seq.items[i] as YamlNode | undefined
      seq.items[i] = child !== undefined && (isScalar(child) || isCollection(child)) ? assignNode(doc, child, v) : createStyled(doc, v)
    })
    seq.items.length = value.length
    return node
  }
  const created = createStyled(doc, value)
  if (isCollection(node) && isCollection(created) && isSeq(node) === isSeq(created)) created.flow = node.flow
  return created
}

/**
 * Refuses an edit whose path goes through a YAML alias (`eu2: *eu`): the node beyond it is the
 * anchor's, shared with every other place that uses it, and the yaml library cannot step through
 * one (a set threw "Expected YAML collection", a 500; a delete found nothing and answered 200 while
 * the region stayed drained). A 409 that says to write the node out in full. The alias itself (the
 * path's last key) is replaced or deleted as any value, the anchor untouched.
 */
function refuseAliases(doc: Document, path: KeyPath): void {
  for (let i = 1; i < path.length; i++) {
    const node = doc.getIn(path.slice(0, i), true)
    if (isAlias(node)) throw new MeridianError('E_API_CONFLICT', `${path.slice(0, i).join('.')} is a YAML alias (*${node.source}) in the zone file: the API does not edit through an alias, which would change every place that uses its anchor; write it out in full in the file, then retry`, 409)
    if (node === undefined) return
  }
}

/** Sets the value at `path` (creating the keys on the way), changing the existing nodes in place. */
export function setAt(doc: Document, path: KeyPath, value: unknown): void {
  refuseAliases(doc, path)
  const existing = doc.getIn(path, true) as YamlNode | undefined
  if (existing !== undefined && existing !== null && (isScalar(existing) || isCollection(existing))) {
    const next = assignNode(doc, existing, value)
    if (next !== existing) doc.setIn(path, next)
    return
  }
  // A new key: an empty `{}` parent becomes a block mapping, so the new entry gets its own lines.
  const parent = doc.getIn(path.slice(0, -1), true) as YamlNode | undefined
  if (parent && isCollection(parent) && parent.items.length === 0) parent.flow = false
  doc.setIn(path, createStyled(doc, value))
}

/** Deletes the key or item at `path`; returns whether it was there. */
export function deleteAt(doc: Document, path: KeyPath): boolean {
  refuseAliases(doc, path)
  if (!doc.hasIn(path)) return false
  return doc.deleteIn(path)
}

/** RFC 7396 JSON merge patch of plain values: `null` deletes a key, objects merge, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch
  const out: Record<string, unknown> = isPlainObject(target) ? { ...target } : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else out[k] = mergePatch(out[k], v)
  }
  return out
}

/** Applies an RFC 7396 merge patch to the mapping at `path` in place (see mergePatch). */
export function mergePatchAt(doc: Document, path: KeyPath, patch: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(patch)) {
    const p = [...path, k]
    const child = doc.getIn(p, true) as YamlNode | undefined
    if (v === null) deleteAt(doc, p)
    else if (isPlainObject(v) && child !== undefined && isMap(child)) mergePatchAt(doc, p, v)
    else setAt(doc, p, mergePatch(undefined, v))
  }
}

/** The value at `path` as plain JS (undefined when absent). */
export function valueAt(doc: Document, path: KeyPath): unknown {
  const node = doc.getIn(path, true) as YamlNode | undefined
  if (node === undefined || node === null) return undefined
  return isScalar(node) || isCollection(node) ? node.toJS(doc) : node
}

/** The keys of the mapping at `path`, in file order (empty when absent or not a mapping). */
export function keysAt(doc: Document, path: KeyPath): string[] {
  const node = doc.getIn(path, true) as YamlNode | undefined
  if (!node || !isMap(node)) return []
  return node.items.map((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)))
}

/** A line as compared between the original and the rendered text: runs of blanks and flow padding do not count. */
function normalise(line: string): string {
  return line
    .replace(/\s+$/, '')
    .replace(/([[{])\s+/g, '$1')
    .replace(/\s+([\]}])/g, '$1')
    .replace(/(\S)\s+/g, '$1 ')
}

/** For each line of `b`, the index of the line of `a` it is matched to (a longest common subsequence), or -1. */
function matchLines(a: string[], b: string[]): number[] {
  const out = new Array<number>(b.length).fill(-1)
  let head = 0
  while (head < a.length && head < b.length && a[head] === b[head]) {
    out[head] = head
    head++
  }
  let tail = 0
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) {
    out[b.length - 1 - tail] = a.length - 1 - tail
    tail++
  }
  const n = a.length - head - tail
  const m = b.length - head - tail
  if (n === 0 || m === 0 || n * m > 4_000_000) return out
  // dp[i][j] = LCS length of a[head+i..] and b[head+j..], in one flat array.
  const w = m + 1
  const dp = new Uint32Array((n + 1) * w)
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      dp[i * w + j] = a[head + i] === b[head + j] ? dp[(i + 1) * w + j + 1]! + 1 : Math.max(dp[(i + 1) * w + j]!, dp[i * w + j + 1]!)
    }
  }
  let i = 0
  let j = 0
  while (i < n && j < m) {
    if (a[head + i] === b[head + j]) {
      out[head + j] = head + i
      i++
      j++
    } else if (dp[(i + 1) * w + j]! >= dp[i * w + j + 1]!) i++
    else j++
  }
  return out
}

/**
 * The text of an edited document. The `yaml` stringifier keeps comments and key order but
 * normalises spacing (one space before a `#`, its own flow padding); so every rendered line that
 * matches a line of the original (ignoring such spacing) is replaced by that original line. The
 * result is checked: it must parse to exactly the edited document's value, else the plain
 * rendering is returned.
 */
export function renderEdited(original: string, doc: Document): string {
  return renderEditedParsed(original, doc).text
}

/**
 * Whether two keys of a mapping of `doc` may be one: the parser's uniqueKeys check would have
 * refused them (it compares scalar keys' values with ===; a Set takes NaN for NaN, which === does not).
 */
function hasKeyTwice(doc: Document): boolean {
  let twice = false
  YAML.visit(doc, {
    Map(_key, map) {
      const seen = new Set<unknown>()
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue
        if (seen.has(pair.key.value)) {
          twice = true
          return YAML.visit.BREAK
        }
        seen.add(pair.key.value)
      }
      return undefined
    },
  })
  return twice
}

/**
 * renderEdited, and the merged text as parsed for its check when that parse is the build's
 * (parseForBuild: no byte order mark, no key twice), with its toJS, so that the build does not
 * parse it again nor take its toJS again.
 */
function renderEditedParsed(original: string, doc: Document): { text: string; parsed?: ParsedZoneText } {
  // The file's own flow style: `{ a: 1 }` or `{a: 1}`, `[ a ]` or `[a]` (the yaml default, padded, when it has none).
  const count = (re: RegExp) => original.match(re)?.length ?? 0
  const mapsPadded = count(/\{ \S/g) >= count(/\{[^\s}]/g)
  const seqsPadded = count(/\[ \S/g) >= count(/\[[^\s\]]/g)
  // A file written with CRLF line ends keeps them: on the lines the change adds or rewrites too.
  const crlf = original.includes('\r\n') && count(/\r\n/g) >= count(/\n/g) - count(/\r\n/g)
  const eol = (text: string) => (crlf ? text.replace(/\r?\n/g, '\r\n') : text)
  const rendered = eol(doc.toString({ lineWidth: 0, flowCollectionPadding: mapsPadded, ...indentOf(original) }))
  const a = original.split('\n')
  const na = a.map(normalise)
  const b = joinKeyComments(rendered.split('\n'), new Set(na))
  const match = matchLines(na, b.map(normalise))
  const out: string[] = []
  let prev = -1 // the line of `a` the last matched line of `b` is
  let blanks = 0 // blank lines written since it
  b.forEach((line, i) => {
    const j = match[i]!
    if (j < 0) {
      const next = realignComment(seqsPadded === mapsPadded ? line : padSeqs(line, seqsPadded), a, match, i)
      blanks = isBlank(next) ? blanks + 1 : 0
      out.push(next)
      return
    }
    // A run of blank lines the stringifier wrote as one (or none) before this kept line: the
    // original's run, as long as it was.
    let run = 0
    while (j - run - 1 > prev && isBlank(a[j - run - 1]!)) run++
    for (let k = j - run + blanks; k < j; k++) out.push(a[k]!)
    out.push(a[j]!)
    prev = j
    blanks = 0
  })
  let merged = out.join('\n')
  // A file without a final newline keeps it so (the stringifier ends every document with one).
  if (!/\n$/.test(original) && /\n$/.test(merged)) merged = merged.replace(/\r?\n$/, '')
  // The check parses `merged` as the build will (without the parser's uniqueKeys check, quadratic
  // in a mapping's keys), reads its keys as the build does, and hands the parse and its toJS on; a
  // text that may have a key twice, or a byte order mark (which the build's parse drops), is
  // checked with the parser's own check, as it always was, and not handed on. The stringifier's
  // own text (merged === rendered: a file written in its style, as the API writes new zones) is
  // taken whatever its check says, as it always was: it is checked for the parse to hand on.
  const parsed = merged.startsWith('\ufeff') ? undefined : parseForBuild(merged)
  const handable = parsed !== undefined && !hasKeyTwice(parsed.doc)
  if (merged === rendered && !handable) return { text: rendered }
  const check = handable ? parsed.doc : YAML.parseDocument(merged, { uniqueKeys: true })
  if (check.errors.length === 0) {
    mapKeysAsWritten(check)
    const js = check.toJS()
    if (isDeepStrictEqual(js, doc.toJS())) return handable ? { text: merged, parsed: { ...parsed, js } } : { text: merged }
  }
  return { text: rendered }
}

/** Index of the `#` that starts a line's comment (outside quoted scalars), or -1. */
function commentStart(line: string): number {
  let quote: string | null = null
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (quote) {
      if (c === '\\' && quote === '"') i++
      else if (c === quote) quote = null
    } else if ((c === '"' || c === "'") && (i === 0 || /[\s[{,:]/.test(line[i - 1]!))) quote = c
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return i
  }
  return -1
}

/** The most spaces a changed line's comment keeps from its code when it is not in a column. */
const GAP_CAP = 4

/** Index of the `#` of a comment after code on `line` (a trailing comment), or -1. */
function trailingComment(line: string | undefined): number {
  if (line === undefined) return -1
  const at = commentStart(line)
  return at > 0 && line.slice(0, at).trim() !== '' ? at : -1
}

/**
 * A changed line whose comment the stringifier moved (`weight: 250 # equal share`): the original,
 * between the same unchanged neighbours, has a line with the same key and comment, whose comment
 * was either in a column or at a distance from its code. In a column (the comment of the line above
 * or below starts at the same place, or it was padded further than GAP_CAP spaces) it goes back to
 * that column when the code leaves a space before it (`weight: 250                  # equal share`);
 * otherwise, and when the code has grown past the column, it keeps its distance from the code (at
 * most GAP_CAP spaces). So a change and its reverse give the line back: a one-line flow region
 * drained (`, drained: true` added) and undrained keeps `}   # London` as written, where padding it
 * to the column of the longer line pushed the comment right. A comment at exactly GAP_CAP spaces
 * may have left a column of comments beside it when its code grew: when its code is short enough
 * again it goes back to that column (left of where it is), which the comments above or below show.
 */
function realignComment(line: string, a: string[], match: number[], i: number): string {
  const at = commentStart(line)
  if (at <= 0 || line.slice(0, at).trim() === '') return line
  let lo = -1
  for (let k = i - 1; k >= 0; k--) if (match[k]! >= 0) { lo = match[k]!; break }
  let hi = a.length
  for (let k = i + 1; k < match.length; k++) if (match[k]! >= 0) { hi = match[k]!; break }
  const code = line.slice(0, at).trimEnd()
  const comment = line.slice(at)
  const key = /^\s*(?:- )?[^:]*:/.exec(code)?.[0]
  const fits = (column: number) => code.length + 1 <= column
  for (let j = lo + 1; j < hi; j++) {
    const o = a[j]!
    const oat = commentStart(o)
    if (oat <= 0 || o.slice(oat) !== comment || (key !== undefined && !o.startsWith(key))) continue
    const gap = oat - o.slice(0, oat).trimEnd().length
    const beside = [trailingComment(a[j - 1]), trailingComment(a[j + 1])].filter((c) => c > 0)
    if ((beside.includes(oat) || gap > GAP_CAP) && fits(oat)) return code.padEnd(oat) + comment
    if (gap === GAP_CAP) for (const c of beside) if (c < oat && fits(c)) return code.padEnd(c) + comment
    // Not the old line's gap when it was wider than the cap: after a shorter value padded to the
    // column that gap is wide, and a longer value back would push the comment right at every change.
    return code + ' '.repeat(Math.min(gap, GAP_CAP)) + comment
  }
  return line
}

const isBlank = (line: string) => /^\s*$/.test(line)

/**
 * The file's indentation for the stringifier: the step most of its nested block lines take under
 * a key (2 when there is none), and whether its block lists are indented under their key
 * (`ns:\n  - a`) or not (`ns:\n- a`), so that an edit of a file indented by 4 does not rewrite it.
 */
function indentOf(text: string): { indent: number; indentSeq: boolean } {
  const steps = new Map<number, number>()
  let seqIn = 0
  let seqOut = 0
  let prev: { depth: number; opens: boolean; item: boolean } | undefined
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '')
    if (isBlank(line) || /^\s*#/.test(line)) continue
    const depth = /^ */.exec(line)![0].length
    const item = /^ *- /.test(line) || /^ *-$/.test(line)
    if (prev?.opens && !prev.item) {
      if (item) {
        if (depth > prev.depth) seqIn++
        else if (depth === prev.depth) seqOut++
      }
      if (!item && depth > prev.depth) steps.set(depth - prev.depth, (steps.get(depth - prev.depth) ?? 0) + 1)
    }
    const at = commentStart(line)
    prev = { depth, opens: /:$/.test((at >= 0 ? line.slice(0, at) : line).trimEnd()), item }
  }
  let indent = 2
  let most = 0
  for (const [step, n] of steps) if (n > most || (n === most && step < indent)) [indent, most] = [step, n]
  return { indent, indentSeq: seqOut <= seqIn }
}

/**
 * The stringifier writes the comment of a key whose value is a block collection (`eu-west:   # London`)
 * on a line of its own under the key (`eu-west:` then `    # London`): the two lines are joined
 * back when the original has that line (so that it is matched and kept as written).
 */
function joinKeyComments(b: string[], original: Set<string>): string[] {
  const out: string[] = []
  for (let i = 0; i < b.length; i++) {
    const line = b[i]!
    const next = b[i + 1]
    if (next !== undefined && /:\r?$/.test(line) && trailingComment(line) < 0 && /^\s*#/.test(next)) {
      const cr = line.endsWith('\r') ? '\r' : ''
      const joined = `${line.slice(0, line.length - cr.length)} ${next.trim()}${cr}`
      if (original.has(normalise(joined))) {
        out.push(joined)
        i++
        continue
      }
    }
    out.push(line)
  }
  return out
}

/** `[ a, b ]` <-> `[a, b]` outside quoted scalars and comments, for a file whose lists are written the other way than its mappings. */
function padSeqs(line: string, padded: boolean): string {
  let out = ''
  let quote: string | null = null
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (quote) {
      out += c
      if (c === '\\' && quote === '"') out += line[++i] ?? ''
      else if (c === quote) quote = null
      continue
    }
    if ((c === '"' || c === "'") && (i === 0 || /[\s[{,:]/.test(line[i - 1]!))) quote = c
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return out + line.slice(i)
    else if (c === '[' && line[i + 1] !== ']') {
      out += padded ? '[ ' : '['
      while (line[i + 1] === ' ') i++
      continue
    } else if (c === ']' && out.length > 0 && !out.endsWith('[')) {
      out = out.replace(/ +$/, '') + (padded ? ' ]' : ']')
      continue
    }
    out += c
  }
  return out
}
