/**
 * GeoSource: the GeoIP database a server answers from, taken again when its file is replaced, on
 * real files (databases built by the checked-in script).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFile, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { GeoSource } from '../../src/geo/index.js'
import { buildTestDb, LONDON_IN_ASHBURN, LONDON_ROW, replaceFile } from '../helpers/geodb.js'
import { tempDir, TEST_GEODB } from '../helpers/server.js'

let dir: string
let cleanup: () => Promise<void>
/** The test database with London's /26 in Ashburn. */
let moved: Buffer
const LONDON_ADDRESS = '192.0.2.10'

before(async () => {
  ;({ dir, cleanup } = await tempDir('meridian-geo-source-'))
  moved = await readFile(await buildTestDb(path.join(dir, 'moved.mmdb'), [[LONDON_ROW, LONDON_IN_ASHBURN]]))
})
after(() => cleanup())

/**
 * Resolves with `p`, failing after `ms`: the watch is not persistent (a server's sockets keep its
 * process alive), so a test waiting on it needs a timer of its own.
 */
async function within<T>(p: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}

/** Resolves once `count()` reaches `n`: polled on each turn of the event loop (no timer), for at most 5 s. */
async function waitForChanges(count: () => number, n: number): Promise<void> {
  const deadline = performance.now() + 5000
  while (count() < n) {
    if (performance.now() > deadline) throw new Error(`${count()} changes, not ${n}`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/**
 * Under `dir`: `versions[0]/geo.mmdb` the test database, `versions[1]/geo.mmdb` the moved one, and a
 * link `link` to the first. Opens `db` (a path through the link) and watches it (a poll every
 * `pollMs`), swaps the link to the second version as deploy tools do (a new link renamed over), and
 * expects the database the link now leads to.
 */
async function swapLink(dir: string, link: string, versions: [string, string], db: string, pollMs: number, what: string): Promise<void> {
  for (const v of versions) await mkdir(path.join(dir, v), { recursive: true })
  await copyFile(TEST_GEODB, path.join(dir, versions[0], 'geo.mmdb'))
  await writeFile(path.join(dir, versions[1], 'geo.mmdb'), moved)
  await symlink(versions[0], path.join(dir, link))
  const geo = await GeoSource.open(path.join(dir, db))
  const swapped = new Promise<void>((resolve) => geo.onChange(() => resolve()))
  geo.watch(() => void geo.reload(), (err) => assert.fail(err), 20, pollMs)
  await symlink(versions[1], path.join(dir, `${link}_tmp`))
  await rename(path.join(dir, `${link}_tmp`), path.join(dir, link))
  await within(swapped, what)
  assert.equal(geo.locate(LONDON_ADDRESS).country, 'US')
  geo.close()
}

/** A fresh copy of the test database in its own directory, opened. */
async function opened(name: string): Promise<{ file: string; geo: GeoSource }> {
  const file = path.join(dir, `${name}.mmdb`)
  await copyFile(TEST_GEODB, file)
  return { file, geo: await GeoSource.open(file) }
}

describe('GeoSource', () => {
  test('a reload with the same file changes nothing; a file renamed over it is taken, once, and the old database closed', async () => {
    const { file, geo } = await opened('swap')
    let changes = 0
    geo.onChange(() => changes++)
    assert.equal(geo.locate(LONDON_ADDRESS).country, 'GB')
    const same = await geo.reload()
    assert.deepEqual(same, { path: file, changed: false, buildEpoch: '2025-01-01T00:00:00.000Z' })
    assert.equal(changes, 0)
    const old = geo.current
    await replaceFile(file, moved)
    const r = await geo.reload()
    assert.equal(r.changed, true)
    assert.equal(r.error, undefined)
    assert.equal(changes, 1)
    assert.equal(geo.locate(LONDON_ADDRESS).country, 'US')
    assert.notEqual(geo.current, old)
    assert.throws(() => old.locate(LONDON_ADDRESS), /is closed/)
    assert.equal((await geo.reload()).changed, false, 'taken once')
    geo.close()
  })

  test('a file that is not a MaxMind DB, or is gone, is refused with the reason, and the last good database keeps answering; a good file later is taken', async () => {
    const { file, geo } = await opened('bad')
    let changes = 0
    geo.onChange(() => changes++)
    await replaceFile(file, moved.subarray(0, 1000))
    const torn = await geo.reload()
    assert.equal(torn.changed, false)
    assert.match(torn.error ?? '', new RegExp(`GeoIP database ${file} is not a valid MaxMind DB file`))
    assert.equal(torn.repeated, undefined, 'reported the first time')
    assert.deepEqual(await geo.reload(), { ...torn, repeated: true }, 'the same file again: the same reason, not worth reporting again')
    assert.equal(geo.locate(LONDON_ADDRESS).country, 'GB')
    await rm(file)
    const gone = await geo.reload()
    assert.match(gone.error ?? '', /does not exist/)
    assert.equal(geo.locate(LONDON_ADDRESS).country, 'GB')
    assert.equal(changes, 0)
    await writeFile(file, moved)
    const good = await geo.reload()
    assert.deepEqual([good.changed, good.error, geo.locate(LONDON_ADDRESS).country, changes], [true, undefined, 'US', 1])
    geo.close()
  })

  test('a database file that is gone is reported once, not at every poll, and again only once it is back and changes', async () => {
    const { file, geo } = await opened('gone')
    const reports: string[] = []
    geo.onReport((r, why) => reports.push(`${why}: ${r.changed ? 'taken' : r.error}`))
    await rm(file)
    const gone = await geo.reload('poll')
    assert.match(gone.error ?? '', /does not exist/)
    assert.equal(gone.repeated, undefined, 'reported the first time')
    for (let i = 0; i < 3; i++) assert.equal((await geo.reload('poll')).repeated, true, 'still gone: the same reason, not worth reporting again')
    assert.equal(reports.length, 1, 'one log line and one meridian_geodb_reloads_total{result="error"}, not one every 5 s')
    await writeFile(file, moved.subarray(0, 1000))
    assert.match((await geo.reload('file changed')).error ?? '', /not a valid MaxMind DB file/)
    await rm(file)
    assert.equal((await geo.reload('poll')).repeated, undefined, 'gone again after another refusal: reported')
    await writeFile(file, moved)
    assert.equal((await geo.reload('file changed')).changed, true)
    assert.deepEqual(reports.map((r) => r.replace(/:.*/, '')), ['poll', 'file changed', 'poll', 'file changed'])
    assert.equal(geo.locate(LONDON_ADDRESS).country, 'US')
    geo.close()
  })

  test('reloads asked while one runs share it and run once more after it: the file is opened, and reported, once per replacement', async () => {
    const { file, geo } = await opened('concurrent')
    let changes = 0
    const reports: string[] = []
    geo.onChange(() => changes++)
    geo.onReport((r, why) => reports.push(`${why}: ${r.changed ? 'taken' : r.error}`))
    await replaceFile(file, moved)
    const results = await Promise.all([geo.reload('first'), geo.reload('second'), geo.reload('third')])
    assert.deepEqual(results.map((r) => r.changed), [true, true, true])
    assert.equal(changes, 1)
    assert.deepEqual(reports, ['first: taken'], 'reported once, with the why of the reload that ran')
    // A replacement made while a run is taking a file (here, from its own listener) is taken by it too.
    const original = await readFile(TEST_GEODB)
    let swappedAgain = false
    geo.onChange(() => {
      if (swappedAgain) return
      swappedAgain = true
      void replaceFile(file, original).then(() => geo.reload('during'))
    })
    await replaceFile(file, moved.subarray(0)) // a new inode, the same octets
    await geo.reload('again')
    await waitForChanges(() => changes, 3)
    assert.equal(geo.locate(LONDON_ADDRESS).country, 'GB', 'the last file is the one answering')
    geo.close()
  })

  test('close() while a reload opens a file: nothing is swapped in, the file opened is closed', async () => {
    const { file, geo } = await opened('closing')
    let changes = 0
    geo.onChange(() => changes++)
    await replaceFile(file, moved)
    const running = geo.reload()
    geo.close()
    assert.equal((await running).changed, false)
    assert.equal(changes, 0)
  })

  test('watch: a symbolic link swapped in the directory (a Kubernetes ConfigMap\'s ..data) is seen by the watch, one swapped elsewhere on the path by the poll', async () => {
    // <root>/cm/geo.mmdb -> ..data/geo.mmdb, ..data -> ..v1: the ConfigMap layout. A poll far
    // longer than the test: only the watch can see this one.
    const root = path.join(dir, 'links')
    const cm = path.join(root, 'cm')
    await mkdir(cm, { recursive: true })
    await symlink('..data/geo.mmdb', path.join(cm, 'geo.mmdb'))
    await swapLink(cm, '..data', ['..v1', '..v2'], 'geo.mmdb', 3_600_000, 'the ..data swap seen by the watch')
    // <root>/current -> releases/a, the database at current/geo.mmdb: the watch is on releases/a.
    await swapLink(root, 'current', ['releases/a', 'releases/b'], 'current/geo.mmdb', 50, 'the release swap seen by the poll')
  })

  test('watch: a file renamed into place is reported (debounced), and the reload it asks for takes it', async () => {
    const { file, geo } = await opened('watched')
    const taken = new Promise<void>((resolve) => geo.onChange(() => resolve()))
    // A poll far longer than the test: the watch sees the rename.
    geo.watch(
      () => void geo.reload(),
      (err) => assert.fail(err),
      20,
      3_600_000,
    )
    await writeFile(path.join(path.dirname(file), 'unrelated.txt'), 'x')
    await replaceFile(file, moved)
    await within(taken, 'the rename seen by the watch')
    assert.equal(geo.locate(LONDON_ADDRESS).country, 'US')
    geo.close()
  })
})
