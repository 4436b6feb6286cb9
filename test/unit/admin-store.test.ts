/**
 * The persistence under the admin API: zone-editor.ts (YAML edits that keep comments, key order
 * and the exact text of untouched lines; ETags; merge patches) and FileConfigStore.edit (validated
 * as a whole set before anything is written; serialised with reloads; the watcher seeing the
 * store's own write changes nothing).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { describe, test, type TestContext } from 'node:test'
import YAML from 'yaml'
import { ConfigError, MeridianError } from '../../src/errors.js'
import { createLogger } from '../../src/log.js'
import type { ZoneSet } from '../../src/model/types.js'
import { removeStaleLinkedTemps, removeStaleTemps, TEMP_RE, tempName, writeFileAtomic } from '../../src/store/atomic.js'
import { FileConfigStore, PreconditionError } from '../../src/store/file-store.js'
import { SerialBook } from '../../src/store/serials.js'
import { deleteAt, etagOf, ifMatchSatisfied, mergePatch, mergePatchAt, parseZoneText, renderEdited, setAt } from '../../src/store/zone-editor.js'
import { DEMO_ZONES, ROOT } from '../helpers/server.js'

const DEMO = path.join(DEMO_ZONES, 'gslb.example.test.yaml')

/** Lines of `b` that are not lines of `a`, and lines of `a` that are not in `b` (a multiset difference). */
function lineDiff(a: string, b: string): { added: string[]; removed: string[] } {
  const count = (text: string) => {
    const m = new Map<string, number>()
    for (const l of text.split('\n')) m.set(l, (m.get(l) ?? 0) + 1)
    return m
  }
  const ca = count(a)
  const cb = count(b)
  const minus = (x: Map<string, number>, y: Map<string, number>) => [...x].flatMap(([l, n]) => Array<string>(Math.max(0, n - (y.get(l) ?? 0))).fill(l))
  return { added: minus(cb, ca), removed: minus(ca, cb) }
}

const edited = (text: string, fn: (doc: ReturnType<typeof parseZoneText>) => void): string => {
  const doc = parseZoneText(text)
  fn(doc)
  const out = renderEdited(text, doc)
  assert.deepEqual(YAML.parse(out), doc.toJS(), 'the text says what the document says')
  return out
}

describe('zone-editor: edits that keep the file as written', () => {
  test('an edit through a YAML alias (a region written as *anchor) is a 409 naming it, for a set and a delete alike, and changes nothing', () => {
    const text = 'regions:\n  eu: &r\n    location: { country: GB }\n    vips: [192.0.2.1]\n    drained: true\n  eu2: *r\n'
    for (const edit of [(d: ReturnType<typeof parseZoneText>) => setAt(d, ['regions', 'eu2', 'drained'], true), (d: ReturnType<typeof parseZoneText>) => deleteAt(d, ['regions', 'eu2', 'drained'])]) {
      const doc = parseZoneText(text)
      // Before: the set threw the yaml library's "Expected YAML collection" (a 500), and the delete
      // (an undrain) found nothing and answered 200 with the region still drained.
      assert.throws(() => edit(doc), (err: unknown) => {
        assert.ok(err instanceof MeridianError)
        assert.deepEqual([err.code, err.status], ['E_API_CONFLICT', 409])
        assert.match(err.message, /^regions\.eu2 is a YAML alias \(\*r\) in the zone file/)
        return true
      })
      assert.equal(renderEdited(text, doc), text)
    }
    // The anchor itself is edited as any node; so is the alias as a whole (the anchor untouched).
    assert.ok(!edited(text, (d) => deleteAt(d, ['regions', 'eu', 'drained'])).includes('drained'))
    assert.equal(edited(text, (d) => deleteAt(d, ['regions', 'eu2'])), text.replace('  eu2: *r\n', ''))
  })

  test('changing one value changes one line; every other line keeps its exact text (comment columns, flow spacing, quoting)', async () => {
    const text = await readFile(DEMO, 'utf8')
    const out = edited(text, (d) => setAt(d, ['soa', 'minimum'], 30))
    assert.deepEqual(lineDiff(text, out), {
      added: ['  minimum: 30                 # negative answers are cached at most this long'],
      removed: ['  minimum: 60                 # negative answers are cached at most this long'],
    })
  })

  test('a new key goes at the end of its mapping, in the style of the file', async () => {
    const text = await readFile(DEMO, 'utf8')
    const out = edited(text, (d) => {
      setAt(d, ['regions', 'eu-west', 'drained'], true)
      setAt(d, ['regions', 'sa-east'], { location: { lat: -23.55, lon: -46.63 }, vips: ['127.0.4.1', '2001:db8:4::1'], weight: 50 })
    })
    assert.deepEqual(lineDiff(text, out).removed, [])
    assert.ok(out.includes('    check: { url: "http://127.0.2.1:8080/healthz", interval: 2, timeout: 1, rise: 2, fall: 2 }\n    drained: true\n  ap-northeast:'), out)
    assert.ok(out.includes('\n  sa-east:\n    location: { lat: -23.55, lon: -46.63 }\n    vips: [127.0.4.1, "2001:db8:4::1"]\n    weight: 50\n\nservices:') || out.includes('\n  sa-east:\n    location: { lat: -23.55, lon: -46.63 }\n    vips: [127.0.4.1, 2001:db8:4::1]\n    weight: 50\n\nservices:'), out)
  })

  test('replacing a mapping keeps the comments and order of the keys that stay; a list keeps the items that stay', async () => {
    const text = await readFile(DEMO, 'utf8')
    const out = edited(text, (d) => setAt(d, ['regions', 'us-east'], { location: { lat: 39, lon: -77.45 }, vips: ['2001:db8:1::1', '127.0.1.9'] }))
    assert.deepEqual(lineDiff(text, out), {
      added: ['    location: { lat: 39, lon: -77.45 }         # near Ashburn, Virginia', '    vips: ["2001:db8:1::1", 127.0.1.9]'],
      removed: ['    location: { lat: 38.95, lon: -77.45 }      # near Ashburn, Virginia', '    vips: [127.0.1.1, "2001:db8:1::1"]', '    check: { url: "http://127.0.1.1:8080/healthz", interval: 2, timeout: 1, rise: 2, fall: 2 }'],
    })
  })

  test('deleting a region or a service removes its lines only', async () => {
    const text = await readFile(DEMO, 'utf8')
    const out = edited(text, (d) => deleteAt(d, ['regions', 'ap-northeast']))
    assert.deepEqual(lineDiff(text, out), {
      added: [],
      removed: ['  ap-northeast:', '    location: { lat: 35.68, lon: 139.69 }      # Tokyo', '    vips: [127.0.3.1, "2001:db8:3::1"]', '    check: { url: "http://127.0.3.1:8080/healthz", interval: 2, timeout: 1, rise: 2, fall: 2 }'],
    })
  })

  test('a merge patch: null removes, objects merge, lists and scalars replace', () => {
    assert.deepEqual(mergePatch({ a: 1, b: { c: 2, d: 3 }, e: [1] }, { a: null, b: { c: 5, d: null, f: 6 }, e: [2, 3] }), { b: { c: 5, f: 6 }, e: [2, 3] })
    assert.deepEqual(mergePatch(undefined, { x: { y: null, z: 1 } }), { x: { z: 1 } })
    const text = 'r:\n  check: { interval: 2, timeout: 1 }   # keep\n  weight: 5\n'
    const out = edited(text, (d) => mergePatchAt(d, ['r'], { check: { timeout: null, rise: 3 }, weight: null }))
    // A lone comment 3 spaces from its code keeps that distance (padded to its old column, a drain
    // and an undrain of a one-line flow region pushed such a comment right: zone-editor-roundtrip.test.ts).
    assert.equal(out, 'r:\n  check: { interval: 2, rise: 3 }   # keep\n', 'the comment keeps its distance from the code')
  })

  test('a comment keeps its column when a value changes back and forth between a short and a long one', () => {
    const text = 'regions:\n  eu:\n    location: { lat: 53.35, lon: -6.26 }       # Dublin\n    vips: [192.0.2.1]\n'
    let out = text
    for (let i = 0; i < 3; i++) {
      out = edited(out, (d) => setAt(d, ['regions', 'eu', 'location'], { country: 'IE' }))
      assert.match(out, /\n {4}location: \{ country: IE \} {18}# Dublin\n/, `round ${i}: short value, the comment in its column`)
      out = edited(out, (d) => setAt(d, ['regions', 'eu', 'location'], { lat: 53.35, lon: -6.26 }))
      assert.equal(out, text, `round ${i}: the long value back, the file as it was`)
    }
    const short = edited(text, (d) => setAt(d, ['regions', 'eu', 'location'], { country: 'IE' }))
    const longer = edited(short, (d) => setAt(d, ['regions', 'eu', 'location'], { lat: 53.349805, lon: -6.26031 }))
    assert.match(longer, /\n {4}location: \{ lat: 53\.349805, lon: -6\.26031 \} {4}# Dublin\n/, 'past the column: the old gap, at most 4 spaces')
  })

  test('files with block comments on keys, block scalars and other styles still parse to what was meant', async () => {
    for (const f of ['rfc/rfc.test.yaml', 'delegation/gslb.example.test.yaml', 'big/big.test.yaml']) {
      const text = await readFile(path.join(ROOT, 'test', 'fixtures', f), 'utf8')
      edited(text, (d) => setAt(d, ['ttl'], 123))
      edited(text, (d) => setAt(d, ['records', 'added-by-test'], { A: ['192.0.2.99'], TXT: 'a  "quoted"  # not a comment' }))
    }
  })

  test('a file with CRLF line ends keeps them on every line, the changed and added ones too', async () => {
    const text = (await readFile(DEMO, 'utf8')).replaceAll('\n', '\r\n')
    const out = edited(text, (d) => {
      setAt(d, ['soa', 'minimum'], 30)
      setAt(d, ['regions', 'eu-west', 'drained'], true)
    })
    assert.ok(out.includes('  minimum: 30                 # negative answers are cached at most this long\r\n'), out)
    assert.ok(out.includes('    drained: true\r\n'), out)
    assert.deepEqual(out.split('\r\n').filter((l) => l.includes('\n')), [], 'no line ends in a bare LF')
    assert.ok(out.endsWith('\r\n'))
  })

  test('ETags and If-Match', () => {
    const e = etagOf('origin: a.test\n')
    assert.match(e, /^"[0-9a-f]{32}"$/)
    assert.notEqual(e, etagOf('origin: b.test\n'))
    assert.equal(ifMatchSatisfied(e, e), true)
    assert.equal(ifMatchSatisfied(`"x", ${e}`, e), true)
    assert.equal(ifMatchSatisfied('*', e), true)
    assert.equal(ifMatchSatisfied(`W/${e}`, e), false)
    assert.equal(ifMatchSatisfied('"x"', e), false)
  })
})

// ---------------------------------------------------------------------------------------------

const ZONE = `# the store's test zone
origin: store.test
soa: { mname: ns1, rname: hostmaster }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 }
regions:
  a: { location: { lat: 50, lon: 0 }, vips: [192.0.2.1], check: { url: "http://{vip}/", interval: 2, timeout: 1 } }   # region a
  b: { location: { lat: 40, lon: -70 }, vips: [192.0.2.2] }
services:
  www: { regions: [a, b] }
`

async function setup(t: TestContext, opts: { watch?: boolean } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'meridian-store-'))
  const file = path.join(dir, 'store.test.yaml')
  await writeFile(file, ZONE)
  type Line = { level: number; msg: string; [k: string]: unknown }
  const lines: Line[] = []
  const waiters: { match: (l: Line) => boolean; resolve: () => void }[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) {
        const parsed = JSON.parse(l) as Line
        lines.push(parsed)
        for (const w of [...waiters]) {
          if (!w.match(parsed)) continue
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve()
        }
      }
      cb()
    },
  })
  const store = new FileConfigStore(dir, createLogger('debug', sink), new SerialBook(path.join(dir, '.meridian', 'serials.json')))
  const sets: ZoneSet[] = []
  store.onChange((s) => sets.push(s))
  await store.reload('start-up')
  if (opts.watch) store.watch(20)
  t.after(async () => {
    store.close()
    await rm(dir, { recursive: true, force: true })
  })
  const waitLog = (match: (l: Line) => boolean) =>
    lines.some(match) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ match, resolve }))
  const serialOf = () => store.current().zones.get('store.test')!.soa.serial!
  return { dir, file, store, lines, sets, waitLog, serialOf, serials: () => readFile(path.join(dir, '.meridian', 'serials.json'), 'utf8') }
}

describe('FileConfigStore.edit', () => {
  test('a valid edit: the whole set rebuilt, the file written, the set swapped in (generation + 1, listeners told), then it resolves', async (t) => {
    const s = await setup(t)
    const serial = s.serialOf()
    const res = await s.store.edit('store.test', (doc) => setAt(doc, ['regions', 'b', 'weight'], 7), { reason: 'test' })
    assert.equal(res.changed, true)
    assert.equal(res.set.generation, 2)
    assert.equal(s.sets.length, 2, 'listeners called once more')
    assert.equal(s.sets[1], res.set)
    assert.equal(s.store.current(), res.set)
    assert.equal(res.zone.regions.get('b')!.weight, 7)
    assert.ok(s.serialOf() > serial, 'serial: auto rises')
    const text = await readFile(s.file, 'utf8')
    assert.equal(text, ZONE.replace('vips: [192.0.2.2] }', 'vips: [192.0.2.2], weight: 7 }'))
    assert.equal(res.etag, etagOf(text))
    assert.equal(s.store.etag('store.test'), res.etag)
    assert.ok(s.lines.some((l) => l.msg === 'zones loaded' && l.reason === 'test'))
  })

  test('a rejected edit (any issue of the new set) writes nothing, keeps the set, and leaves the serial book alone', async (t) => {
    const s = await setup(t)
    const serials = await s.serials()
    const { mtimeMs } = await stat(s.file)
    await assert.rejects(
      s.store.edit('store.test', (doc) => setAt(doc, ['regions', 'a', 'check', 'timeout'], 9)),
      (err: unknown) => err instanceof ConfigError && err.issues.some((i) => i.path === 'regions.a.check.timeout' && i.message === 'timeout (9 s) must be below the interval (2 s)'),
    )
    await assert.rejects(
      s.store.edit('store.test', () => {
        throw new MeridianError('E_API_CONFLICT', 'refused by the mutation', 409)
      }),
      { code: 'E_API_CONFLICT' },
    )
    await assert.rejects(s.store.edit('store.test', (doc) => setAt(doc, ['regions', 'b', 'weight'], 1), { ifMatch: '"stale"' }), PreconditionError)
    await assert.rejects(s.store.edit('nope.test', () => undefined), { code: 'E_API_NOT_FOUND', status: 404 })
    assert.equal(await readFile(s.file, 'utf8'), ZONE)
    assert.equal((await stat(s.file)).mtimeMs, mtimeMs)
    assert.equal(await s.serials(), serials, 'serials.json untouched')
    assert.equal(s.store.current().generation, 1)
    assert.equal(s.sets.length, 1)
  })

  test('an edit of a zone whose file was broken by hand since the last reload: 409 naming the file\'s own problem and where it is', async (t) => {
    const s = await setup(t)
    const broken = ZONE.replace('ns1: { A: 192.0.2.53 }', 'ns1: { A: 192.0.2.53 }\n  www2: { A: 192.0.2.300 }')
    await writeFile(s.file, broken)
    await assert.rejects(s.store.edit('store.test', (doc) => setAt(doc, ['regions', 'b', 'weight'], 3)), (err: unknown) => {
      assert.ok(err instanceof MeridianError)
      assert.deepEqual([err.code, err.status], ['E_API_CONFLICT', 409])
      assert.equal(err.message, `${s.file} has errors as it is on disk, before this change (${s.file}:7:14: records.www2.A: must be an IPv4 address such as 192.0.2.1, got "192.0.2.300"); fix the file, then POST /v1/reload`)
      return true
    })
    assert.equal(await readFile(s.file, 'utf8'), broken, 'nothing written')
    // A problem of the change itself is still the request's (400 with the body's key paths).
    await writeFile(s.file, ZONE)
    await assert.rejects(s.store.edit('store.test', (doc) => setAt(doc, ['regions', 'a', 'check', 'timeout'], 9)), ConfigError)
  })

  test('an edit of a zone whose file holds an alias bomb on disk: 409 naming it, not a 500, and nothing written', async (t) => {
    const s = await setup(t)
    const levels = Array.from({ length: 9 }, (_, i) => `x${i + 1}: &a${i + 1} [${Array<string>(9).fill(`*a${i}`).join(', ')}]`)
    const bomb = `${ZONE}x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n${levels.join('\n')}\n`
    await writeFile(s.file, bomb)
    await assert.rejects(s.store.edit('store.test', (doc) => setAt(doc, ['regions', 'b', 'weight'], 3)), (err: unknown) => {
      assert.ok(err instanceof MeridianError)
      assert.deepEqual([err.code, err.status], ['E_API_CONFLICT', 409])
      assert.match(err.message, /has errors as it is on disk, before this change \(.*aliases expand to too many nodes/)
      return true
    })
    assert.equal(await readFile(s.file, 'utf8'), bomb, 'nothing written')
  })

  test("the rewritten file keeps the original file's permissions", async (t) => {
    const s = await setup(t)
    await chmod(s.file, 0o640)
    await s.store.edit('store.test', (doc) => setAt(doc, ['regions', 'b', 'weight'], 3))
    assert.equal((await stat(s.file)).mode & 0o777, 0o640)
  })

  test("the rewritten file keeps the original file's owner and group (a zone file of another user, edited by a server running as root)", async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to give the file another owner')
    const s = await setup(t)
    await chown(s.file, 1, 2)
    await s.store.edit('store.test', (doc) => setAt(doc, ['regions', 'b', 'weight'], 3))
    const st = await stat(s.file)
    assert.deepEqual([st.uid, st.gid], [1, 2])
    assert.match(await readFile(s.file, 'utf8'), /weight: 3/)
  })

  test('a zone file that is a symbolic link is written through: the link stays a link, the file it names gets the edit', async (t) => {
    const s = await setup(t)
    const elsewhere = await mkdtemp(path.join(tmpdir(), 'meridian-store-real-'))
    t.after(() => rm(elsewhere, { recursive: true, force: true }))
    const real = path.join(elsewhere, 'store.test.yaml')
    await rename(s.file, real)
    await symlink(real, s.file)
    await s.store.edit('store.test', (doc) => setAt(doc, ['regions', 'b', 'weight'], 3))
    assert.ok((await lstat(s.file)).isSymbolicLink(), 'still a link')
    assert.equal(await readFile(real, 'utf8'), ZONE.replace('vips: [192.0.2.2] }', 'vips: [192.0.2.2], weight: 3 }'))
    assert.deepEqual((await readdir(elsewhere)).sort(), ['store.test.yaml'], 'no temporary file left beside it')
  })

  test('a write whose rename fails (a zone file bind-mounted into a container: EBUSY) leaves no temporary file behind', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'meridian-rename-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    // rename(2) over a non-empty directory fails after the temporary file is written, as over a mount point.
    const target = path.join(dir, 'z.yaml')
    await mkdir(target)
    await writeFile(path.join(target, 'keep'), 'x')
    await assert.rejects(writeFileAtomic(target, 'origin: z.test\n'), (err: NodeJS.ErrnoException) => err.syscall === 'rename')
    assert.deepEqual(await readdir(dir), ['z.yaml'], 'no .z.yaml.*.tmp left in the zones directory')
  })

  test('temporary files of writers that no longer run (and our own: a container restarts with the same pid) are removed at start; those of a live writer and other files stay', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'meridian-temps-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    // A pid that ran and has exited.
    const child = spawn(process.execPath, ['-e', ''])
    await new Promise((resolve) => child.once('exit', resolve))
    const dead = `.z.yaml.${child.pid}.1796000000000.tmp`
    const own = `.z.yaml.${process.pid}.1796000000002.tmp`
    const live = `.z.yaml.${process.ppid}.1796000000001.tmp` // the test runner: running
    for (const name of [dead, own, live, 'z.yaml', 'notes.tmp', '.z.yaml.tmp']) await writeFile(path.join(dir, name), 'x')
    assert.deepEqual((await removeStaleTemps(dir)).sort(), [dead, own].sort())
    assert.deepEqual((await readdir(dir)).sort(), [live, '.z.yaml.tmp', 'notes.tmp', 'z.yaml'].sort())
    assert.deepEqual(await removeStaleTemps(path.join(dir, 'missing')), [], 'a missing directory has none')
  })

  test('beside the target of a linked zone file, only that file\'s stale temporary files are removed at start', async (t) => {
    const root = await mkdtemp(path.join(tmpdir(), 'meridian-linked-temps-'))
    t.after(() => rm(root, { recursive: true, force: true }))
    const [zones, checkout] = [path.join(root, 'zones'), path.join(root, 'checkout')]
    await Promise.all([mkdir(zones), mkdir(checkout)])
    const child = spawn(process.execPath, ['-e', ''])
    await new Promise((resolve) => child.once('exit', resolve))
    const mine = `.z.yaml.${child.pid}.1796000000000.tmp`
    const another = `.other.yaml.${child.pid}.1796000000000.tmp` // not a linked file's: not Meridian's to remove
    const backup = `.z.yaml.bak.${child.pid}.1796000000000.tmp` // z.yaml.bak's, not z.yaml's
    for (const name of ['z.yaml', mine, another, backup]) await writeFile(path.join(checkout, name), 'x')
    await symlink(path.join(checkout, 'z.yaml'), path.join(zones, 'z.yaml'))
    await symlink(path.join(checkout, 'gone.yaml'), path.join(zones, 'gone.yaml')) // dangling: skipped
    assert.deepEqual(await removeStaleLinkedTemps(zones), [{ dir: checkout, removed: [mine] }])
    assert.deepEqual((await readdir(checkout)).sort(), [another, backup, 'z.yaml'].sort())
  })

  test('a file whose name is near 255 octets gets a temporary file whose name is cut to fit; beside a linked one, its stale temporary file is still its own at start', async (t) => {
    const root = await mkdtemp(path.join(tmpdir(), 'meridian-long-temps-'))
    t.after(() => rm(root, { recursive: true, force: true }))
    const [zones, checkout] = [path.join(root, 'zones'), path.join(root, 'checkout')]
    await Promise.all([mkdir(zones), mkdir(checkout)])
    const long = `${'a'.repeat(246)}.yaml` // 251 octets: .NAME.PID.MS.tmp would be ~278
    const cut = tempName(long, 4194304, 1796000000000)
    assert.equal(Buffer.byteLength(cut), 255)
    assert.match(cut, TEMP_RE)
    assert.equal(tempName('z.yaml', 42, 1796000000000), '.z.yaml.42.1796000000000.tmp', 'a short name is not cut')
    await writeFile(path.join(checkout, long), 'origin: a.test\n')
    await writeFileAtomic(path.join(checkout, long), 'origin: b.test\n')
    assert.equal(await readFile(path.join(checkout, long), 'utf8'), 'origin: b.test\n')
    assert.deepEqual(await readdir(checkout), [long], 'written, its temporary file renamed into place')

    const child = spawn(process.execPath, ['-e', ''])
    await new Promise((resolve) => child.once('exit', resolve))
    const stale = tempName(long, child.pid!, 1796000000000)
    const other = tempName(`${'a'.repeat(10)}.yaml`, child.pid!, 1796000000000) // another file's, whose name starts the same
    for (const name of [stale, other]) await writeFile(path.join(checkout, name), 'x')
    await symlink(path.join(checkout, long), path.join(zones, 'long.yaml'))
    assert.deepEqual(await removeStaleLinkedTemps(zones), [{ dir: checkout, removed: [stale] }])
    assert.deepEqual((await readdir(checkout)).sort(), [long, other].sort())
  })

  test('writes of one file started in the same turn each get a temporary file of their own: every one succeeds and the file is one of them whole', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'meridian-same-ms-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const file = path.join(dir, 'health.json')
    // Contents of different lengths, so a mix of two would show.
    const texts = Array.from({ length: 20 }, (_, i) => `${JSON.stringify({ write: i, pad: 'x'.repeat(200 + 37 * i) })}\n`)
    // Started together (within a millisecond or two): with the time alone in the name, they shared
    // temporary files, and renames failed with ENOENT.
    const results = await Promise.allSettled(texts.map((text) => writeFileAtomic(file, text)))
    assert.deepEqual(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)), [])
    assert.ok(texts.includes(await readFile(file, 'utf8')), 'the file is one write whole')
    assert.deepEqual(await readdir(dir), ['health.json'], 'no temporary file left')
  })

  test('an edit that changes nothing writes nothing and swaps nothing', async (t) => {
    const s = await setup(t)
    const { mtimeMs } = await stat(s.file)
    const res = await s.store.edit('store.test', (doc) => setAt(doc, ['regions', 'b', 'vips'], ['192.0.2.2']))
    assert.equal(res.changed, false)
    assert.equal(res.etag, etagOf(ZONE))
    assert.equal((await stat(s.file)).mtimeMs, mtimeMs)
    assert.equal(s.store.current().generation, 1)
  })

  test('an edit that asks for what a hand edit not yet reloaded already wrote: the set is brought up to the file, and the answer shows it', async (t) => {
    // --no-watch, or the watcher's debounce: the file says weight 7, the set serving still 100.
    const s = await setup(t)
    const byHand = ZONE.replace('vips: [192.0.2.2] }', 'vips: [192.0.2.2], weight: 7 }')
    await writeFile(s.file, byHand)
    const res = await s.store.edit('store.test', (doc) => setAt(doc, ['regions', 'b', 'weight'], 7))
    assert.equal(await readFile(s.file, 'utf8'), byHand, 'the file already said it: nothing to write')
    assert.equal(res.zone.regions.get('b')!.weight, 7, 'the answer shows the weight asked for')
    assert.equal(s.store.current().zones.get('store.test')!.regions.get('b')!.weight, 7, 'and DNS answers with it')
    assert.equal(s.store.current(), res.set)
    assert.equal(res.etag, etagOf(byHand))
    assert.equal(s.store.etag('store.test'), res.etag, 'a GET after it carries the ETag the edit answered')
  })

  test("the watcher sees the store's own write and changes nothing: no second swap, no serial bump, no error", async (t) => {
    const s = await setup(t, { watch: true })
    await s.store.edit('store.test', (doc) => setAt(doc, ['regions', 'b', 'weight'], 9))
    const serial = s.serialOf()
    await s.waitLog((l) => l.msg === 'zone files unchanged; nothing to reload')
    assert.equal(s.store.current().generation, 2)
    assert.equal(s.serialOf(), serial)
    assert.equal(s.sets.length, 2)
    assert.deepEqual(s.lines.filter((l) => l.level >= 40), [], 'no warning or error logged')
    // A change by hand after that is still picked up.
    await writeFile(s.file, (await readFile(s.file, 'utf8')).replace('weight: 9', 'weight: 11'))
    await s.waitLog((l) => l.msg === 'zones loaded' && String(l.reason).startsWith('file changed'))
    assert.equal(s.store.current().zones.get('store.test')!.regions.get('b')!.weight, 11)
  })

  test('edits and reloads are serialised: each edit starts from the file the one before it wrote', async (t) => {
    const s = await setup(t)
    const results = await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => s.store.edit('store.test', (doc) => setAt(doc, ['regions', 'b', 'weight'], i))),
      s.store.reload('SIGHUP'),
      ...Array.from({ length: 10 }, (_, i) => s.store.edit('store.test', (doc) => setAt(doc, ['regions', 'a', 'weight'], 100 + i))),
    ])
    const gens = results.map((r) => ('set' in r ? r.set.generation : r.generation))
    assert.deepEqual(gens, [...Array.from({ length: 10 }, (_, i) => 2 + i), 11, ...Array.from({ length: 10 }, (_, i) => 12 + i)], 'in order; the reload in between found nothing new')
    const def = YAML.parse(await readFile(s.file, 'utf8')) as { regions: Record<string, { weight: number }> }
    assert.deepEqual([def.regions.a!.weight, def.regions.b!.weight], [109, 9])
    assert.ok((await readFile(s.file, 'utf8')).includes("# the store's test zone"))
    assert.ok((await readFile(s.file, 'utf8')).includes('   # region a'))
  })
})
