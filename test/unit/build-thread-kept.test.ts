/**
 * The build thread keeps the parse of the text an admin change wrote (build-worker.ts), and the
 * next change of that file starts from it instead of parsing the file again, but only when the
 * file's text is exactly that one: a file changed by hand since (one character, the same size, the
 * same modification time) is parsed, and the change is made to what it says. Whatever the thread
 * starts from, the change gives the text, the set and the errors (file:line:col) that the same
 * change made on the event loop gives, and a refused change leaves nothing of itself behind.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { applyEdit, type EditOp, type EditZone } from '../../src/admin/edits.js'
import { ZoneSetBuilder, type ThreadedBuild } from '../../src/config/build-thread.js'
import { buildZoneSet } from '../../src/config/load.js'
import { PLACES } from '../../src/config/places.js'
import { ConfigError } from '../../src/errors.js'
import { createLogger } from '../../src/log.js'
import { FileConfigStore } from '../../src/store/file-store.js'
import { SerialBook } from '../../src/store/serials.js'
import { editText } from '../../src/store/zone-editor.js'

const FILE = 'p.test.yaml'
/** Line 10 is www's, and a PATCH of its regions to [eu, nowhere] is refused at 10:45. */
const ZONE = `origin: p.test
soa: { mname: ns1, rname: hostmaster }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 } # the name server
regions:
  eu: { location: { lat: 3, lon: 4 }, vips: [192.0.2.20] }   # Dublin
  us: { location: { lat: 5, lon: 6 }, vips: [192.0.2.30] }
services:
  www: { policy: geo-latency, regions: [eu, us], ttl: 30 }
  api:
    policy: geo
    regions: [us]
`
const ZONE_INFO: EditZone = { origin: 'p.test', regions: ['eu', 'us'], services: ['www', 'api'] }
const NOW = 1_700_000_000
const DRAIN: EditOp = { op: 'drain', region: 'eu' }
const UNDRAIN: EditOp = { op: 'undrain', region: 'eu' }
/** Refused by the build (not by the route): a service naming a region the zone does not have. */
const BAD_PATCH: EditOp = { op: 'patch', section: 'services', p: 'www', body: { regions: ['eu', 'nowhere'] } }

function builder(t: TestContext): ZoneSetBuilder {
  const b = new ZoneSetBuilder()
  t.after(() => b.close())
  return b
}

/** The change made in the thread on `text`. */
const inThread = (b: ZoneSetBuilder, text: string, op: EditOp): Promise<ThreadedBuild> => b.build([{ file: FILE, text }], 2, [], NOW, { file: FILE, op, zone: ZONE_INFO })

/** The same change made on the event loop, as the store makes it without a thread: its text and set, or its error. */
function onLoop(text: string, op: EditOp): { text: string; definition: unknown } {
  const out = editText(text, (doc) => applyEdit(doc, op, ZONE_INFO))
  const set = buildZoneSet([{ file: FILE, text: out }], SerialBook.of([], () => NOW).plan().serialOf, 2, PLACES)
  return { text: out, definition: set.zones.get('p.test')!.definition }
}

/** The message of the ConfigError `work` rejects with. */
async function configError(work: () => unknown): Promise<string> {
  try {
    await work()
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, not ${String(err)}`)
    return err.message
  }
  return assert.fail('the change was taken')
}

const same = (got: ThreadedBuild, want: { text: string; definition: unknown }, what: string): void => {
  assert.equal(got.text, want.text, `${what}: the text`)
  assert.deepEqual(got.set.zones.get('p.test')!.definition, want.definition, `${what}: the set`)
}

test('a change of the text the change before it wrote starts from the kept parse, and gives the text and set a parse gives', async (t) => {
  const b = builder(t)
  const drained = await inThread(b, ZONE, DRAIN)
  assert.equal(drained.reused, false, 'the first change parses the file')
  same(drained, onLoop(ZONE, DRAIN), 'drain')
  const undrained = await inThread(b, drained.text!, UNDRAIN)
  assert.equal(undrained.reused, true, 'the undrain starts from the parse of the text the drain wrote')
  same(undrained, onLoop(drained.text!, UNDRAIN), 'undrain')
  const ops: EditOp[] = [
    { op: 'patch', section: 'services', p: 'www', body: { ttl: 45 } },
    { op: 'create', section: 'services', name: 'new', key: 'new', rest: { policy: 'geo', regions: ['eu'] } },
    { op: 'delete', section: 'services', p: 'api', detach: false },
  ]
  let text = undrained.text!
  for (const op of ops) {
    const got = await inThread(b, text, op)
    assert.equal(got.reused, true, `${op.op}: from the kept parse`)
    same(got, onLoop(text, op), op.op)
    text = got.text!
  }
})

test('a file changed by hand since the last change (one character, the same size) is parsed again, and the change is made to what it says', async (t) => {
  const b = builder(t)
  const drained = await inThread(b, ZONE, DRAIN)
  const byHand = drained.text!.replace('ttl: 30', 'ttl: 31')
  assert.equal(byHand.length, drained.text!.length)
  const undrained = await inThread(b, byHand, UNDRAIN)
  assert.equal(undrained.reused, false, 'another text: parsed')
  same(undrained, onLoop(byHand, UNDRAIN), 'undrain after the hand edit')
  assert.match(undrained.text!, /ttl: 31/)
  assert.equal(undrained.set.zones.get('p.test')!.definition.services.www!.ttl, 31)
})

test('a change refused by the build after the kept parse names the line of the text it made, as on the event loop, also when a hand edit moved the lines', async (t) => {
  const b = builder(t)
  const drained = await inThread(b, ZONE, DRAIN)
  const want = await configError(() => onLoop(drained.text!, BAD_PATCH))
  assert.match(want, /p\.test\.yaml:10:45: services\.www\.regions\.1: unknown region "nowhere"/)
  assert.equal(await configError(() => inThread(b, drained.text!, BAD_PATCH)), want)
  // The drain again (the refused change took the kept parse), then three lines added above by hand.
  const again = await inThread(b, ZONE, DRAIN)
  assert.equal(again.text, drained.text)
  const byHand = '# three lines\n# added\n# by hand\n' + again.text!
  const moved = await configError(() => inThread(b, byHand, BAD_PATCH))
  assert.equal(moved, await configError(() => onLoop(byHand, BAD_PATCH)))
  assert.match(moved, /p\.test\.yaml:13:45: services\.www\.regions\.1/)
})

test('a refused change leaves nothing of itself in what the next change starts from', async (t) => {
  const b = builder(t)
  const drained = await inThread(b, ZONE, DRAIN)
  // Refused by the build after its change was made to the document of the kept parse.
  await configError(() => inThread(b, drained.text!, BAD_PATCH))
  // Refused by the route (a 404) before anything is changed.
  await assert.rejects(inThread(b, drained.text!, { op: 'drain', region: 'nowhere' }), /no region nowhere/)
  const undrained = await inThread(b, drained.text!, UNDRAIN)
  same(undrained, onLoop(drained.text!, UNDRAIN), 'undrain after the refusals')
  assert.doesNotMatch(undrained.text!, /nowhere/)
})

test('through the store: a hand edit between two admin changes, the same size and modification time, is what the second change writes and serves', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'meridian-kept-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, FILE)
  await writeFile(file, ZONE)
  const store = new FileConfigStore(dir, createLogger('silent'), SerialBook.forZonesDir(dir), PLACES, {}, new ZoneSetBuilder())
  t.after(() => store.close())
  await store.reload('start-up')
  await store.edit('p.test', DRAIN)
  const drained = await readFile(file, 'utf8')
  const { mtime } = await stat(file)
  const byHand = drained.replace('ttl: 30', 'ttl: 31')
  await writeFile(file, byHand)
  await utimes(file, mtime, mtime)
  const res = await store.edit('p.test', UNDRAIN)
  assert.equal(res.changed, true)
  const written = await readFile(file, 'utf8')
  assert.equal(written, onLoop(byHand, UNDRAIN).text, 'undrained, and the hand edit kept')
  assert.match(written, /ttl: 31/)
  assert.equal(store.current().zones.get('p.test')!.definition.services.www!.ttl, 31)
  assert.equal(store.current().zones.get('p.test')!.definition.regions.eu!.drained, false)
})
